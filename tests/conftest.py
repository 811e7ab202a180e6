"""Shared test configuration.

Tests that need a service (PostgreSQL, Redis, ...) skip with a reason when it is absent; with
``GRISTMILL_REQUIRE_SERVICES=1`` (set by CI) they fail instead.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("GRISTMILL_REQUIRE_SERVICES") == "1"


def service_absent(reason: str) -> None:
    """Skip the test because a service is absent, or fail if CI requires services."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (GRISTMILL_REQUIRE_SERVICES=1 turns this skip into a failure)")
    pytest.skip(reason)


BACKENDS = ("sqlite", "postgres")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``-n 2 --dist loadgroup``, as CI runs), keep the tests of an
    end-to-end module on one database together on one process: the module's server (and
    browser) start once there. The other tests are shared out one by one."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if not module.startswith("tests/e2e/"):
            continue
        params = getattr(item, "callspec", None)
        values = params.params.values() if params is not None else ()
        backend = next((v for v in values if isinstance(v, str) and v in BACKENDS), "")
        item.add_marker(pytest.mark.xdist_group(f"{module}[{backend}]" if backend else module))

"""The pages under their Content-Security-Policy, in a real browser: nothing on them is refused
(no inline script or style slipped in), and the live run page still updates itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server
from tests.e2e.test_browser import browser, page

__all__ = ["browser", "page"]


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)  # the database plays no part
def test_no_page_breaks_its_content_security_policy(
    server: Server, page: Any, tmp_path: Path
) -> None:
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    control = tmp_path / "control"
    control.mkdir()
    page.goto(f"{server.url}pipelines/holding/")
    page.fill("#id_control", str(control))
    page.click("#submit-button")
    page.wait_for_selector("#step-hold.state-running")  # run.js runs under the policy
    (control / "release").touch()
    page.wait_for_selector("#results")
    for path in ["", "sign-in/", "admin/login/", "no-such-page"]:
        page.goto(f"{server.url}{path}")
    assert refused == []

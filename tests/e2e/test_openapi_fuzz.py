"""schemathesis against the served OpenAPI document: no generated request gets a 5xx.

Driven through Hypothesis directly (a strategy per operation): schemathesis's pytest
integration does not work with pytest 9.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.e2e.conftest import Server

EXAMPLES = 30


def test_no_generated_request_is_answered_with_a_server_error(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call(base_url=server.url.rstrip("/"))
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} answered {response.status_code}: "
                f"{response.text[:500]}"
            )

        fuzz()

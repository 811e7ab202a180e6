"""schemathesis against the served OpenAPI document: every answer to a generated request is
one the document describes, checked with all of schemathesis's checks (no 5xx, status codes,
content types, headers and bodies that match the document, invalid data refused, methods the
path does not take refused...).

Driven through Hypothesis directly (a strategy per operation and generation mode):
schemathesis's pytest integration does not work with pytest 9.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.e2e.conftest import Server

EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}
"""Examples per operation: requests that fit the document, and requests that violate it."""
TAKES_A_BODY = {
    "POST /api/v1/pipelines/{name}/runs",
    "POST /api/v1/tokens",
    "POST /api/v1/datafiles",
    "POST /api/v1/datafiles/{file_id}/conversions",
    "PUT /api/v1/account/notifications",
}


@pytest.mark.timeout(600)  # 30 requests for each of 30-odd operations: minutes on a busy machine
def test_every_answer_to_a_generated_request_matches_the_document(server: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    sent: collections.Counter[tuple[str, GenerationMode]] = collections.Counter()
    for operation in operations:
        for mode in EXAMPLES:
            try:
                fuzzer(operation, mode, server, sent)()
            except Unsatisfiable:
                # Nothing in the operation can be violated (its only parameters are free
                # strings in the path): it has no negative cases. Checked below for the
                # operations that take a body.
                assert mode == GenerationMode.NEGATIVE, operation.label
    for label in TAKES_A_BODY:
        assert sent[label, GenerationMode.NEGATIVE] > 0, label


def fuzzer(
    operation: Any,
    mode: GenerationMode,
    server: Server,
    sent: collections.Counter[tuple[str, GenerationMode]],
) -> Callable[[], None]:
    """A Hypothesis test sending ``operation`` requests of ``mode`` and checking each answer
    with every check; counts what it sent in ``sent``."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        sent[operation.label, mode] += 1
        case.call_and_validate(base_url=server.url.rstrip("/"))

    return fuzz

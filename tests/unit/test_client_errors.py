"""The client's exceptions, read from the API's error format."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from gristmill.client import errors


@pytest.mark.parametrize(("code", "kind"), sorted(errors.BY_CODE.items()))
def test_each_code_of_the_error_format_has_its_exception(
    code: str, kind: type[errors.ResponseError]
) -> None:
    body = {"error": {"code": code, "message": "m", "details": {"f": ["why"]}}}
    raised = errors.error_from(httpx.Response(418, json=body))
    assert type(raised) is kind
    assert (raised.status, raised.code, raised.message, raised.details) == (
        418,
        code,
        "m",
        {"f": ["why"]},
    )


def test_the_codes_are_those_the_api_documents() -> None:
    assert set(errors.BY_CODE) == {
        "invalid", "unauthenticated", "forbidden", "not_found", "conflict", "too_large",
        "unsupported_media_type", "method_not_allowed", "too_slow", "throttled",
        "unavailable", "insufficient_storage", "internal",
    }  # fmt: skip


def test_an_answer_in_another_format_keeps_its_status_and_text() -> None:
    raised = errors.error_from(httpx.Response(502, text="<html>Bad Gateway</html>"))
    assert type(raised) is errors.ResponseError
    assert (raised.code, raised.details) == (None, {})
    assert raised.message == "the server answered 502: <html>Bad Gateway</html>"


def test_an_unknown_code_is_a_response_error_with_that_code() -> None:
    body = {"error": {"code": "new_code", "message": "later", "details": {}}}
    raised = errors.error_from(httpx.Response(400, json=body))
    assert (type(raised), raised.code, raised.message) == (
        errors.ResponseError,
        "new_code",
        "later",
    )


def test_the_client_imports_no_django() -> None:
    """A program on another machine needs the client only, not the server's framework."""
    code = (
        "import json, sys, gristmill.client; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'django')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, json.loads(done.stdout or "null")) == (0, []), done.stderr

"""The API over a real socket, for what only a real HTTP server shows: chunked request bodies
(no Content-Length), and the headers of answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Server


def chunked(data: bytes, size: int = 7) -> Iterator[bytes]:
    """``data`` as a generator, which httpx sends with Transfer-Encoding: chunked."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


FORM = "multipart/form-data; boundary=b"


def form(field: str, name: str, data: bytes) -> bytes:
    head = f'--b\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
    return head.encode() + b"Content-Type: text/plain\r\n\r\n" + data + b"\r\n--b--\r\n"


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    name = f"wire-{uuid.uuid4().hex[:6]}"
    made = server.command(
        "manage",
        "createsuperuser",
        "--noinput",
        "--username",
        name,
        "--email",
        "w@example.com",
        DJANGO_SUPERUSER_PASSWORD="a long pass phrase",
    )
    assert made.returncode == 0, made.stderr
    key = server.command("token", "create", name)
    assert key.returncode == 0, key.stderr
    return key.stdout.strip()


def test_a_chunked_upload_of_a_data_file_keeps_the_file(server: Server, token: str) -> None:
    body = form("file", "notes.txt", b"the mill grinds slowly\n" * 100)
    with server.client() as client:
        response = client.post(
            "/api/v1/datafiles",
            content=chunked(body),
            headers={"Content-Type": FORM, "Authorization": f"Bearer {token}"},
        )
        assert response.request.headers["Transfer-Encoding"] == "chunked"
        assert response.status_code == 201, response.text
        assert (response.json()["name"], response.json()["size"]) == ("notes.txt", 2300)


def test_a_chunked_json_submission_is_read_whole(server: Server) -> None:
    body = b'{"inputs": [{"kind": "json", "value": {"rows": [1, 2, 3]}}]}'
    with server.client() as client:
        response = client.post(
            "/api/v1/pipelines/json-only/runs",
            content=chunked(body),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 201, response.text


def test_a_chunked_json_body_over_the_memory_limit_is_too_large(server: Server) -> None:
    body = b'{"inputs": [{"kind": "text", "text": "' + b"x" * (3 << 20) + b'"}]}'
    with server.client() as client:
        response = client.post(
            "/api/v1/pipelines/trivial/runs",
            content=chunked(body, 1 << 16),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "too_large",
            "message": "the request body is larger than this server accepts",
            "details": {},
        }
    }

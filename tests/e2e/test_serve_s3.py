"""gristmill serve keeping its files on S3 (moto's server on a free port): a 50 MB upload goes
to the bucket, the worker copies it, and its download streams back from the bucket the same
bytes without the server ever holding the file in memory."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import E2E_PIPELINES, Server, finished, start_server, stop_server
from tests.integration.conftest import PIPELINES
from tests.integration.s3 import Bucket

PIPELINES_S3 = str(Path(__file__).with_name("storage_pipelines.py"))
SIZE = 50 << 20
MIB = 1 << 20


@pytest.fixture(scope="module")
def s3_bucket(s3_server: str) -> Bucket:
    made = Bucket(f"gristmill-{uuid.uuid4().hex[:12]}", s3_server)
    made.client().create_bucket(Bucket=made.name)
    return made


@pytest.fixture(scope="module")
def s3_serve(s3_bucket: Bucket, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A live server (SQLite, one worker) whose files are in ``s3_bucket``."""
    data_dir = tmp_path_factory.mktemp("serve-s3")
    running = start_server(
        data_dir, pipelines=(PIPELINES, E2E_PIPELINES, PIPELINES_S3), settings=s3_bucket.env()
    )
    yield running
    stop_server(running.process)


def _memory(pid: int) -> dict[str, int]:
    """The process's resident memory now and at its peak, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def _big_file(path: Path) -> str:
    """Write SIZE bytes of varied data to ``path``; return their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for n in range(SIZE // MIB):
            chunk = hashlib.sha256(str(n).encode()).digest() * (MIB // 32)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def test_a_big_upload_goes_through_the_bucket_and_streams_back(
    s3_serve: Server, s3_bucket: Bucket, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    expected = _big_file(source)
    with s3_serve.client() as client, source.open("rb") as upload:
        answer = client.post(
            "/api/v1/pipelines/copying/runs",
            files={"files": ("big.bin", upload, "application/octet-stream")},
            timeout=120,
        )
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["id"]
        status = finished(client, run_id, timeout=120)
        assert status["state"] == "succeeded", status
        (output,) = client.get(f"/api/v1/runs/{run_id}/outputs").json()
        key = f"runs/{run_id}/a1/copy/copy.bin"
        assert s3_bucket.keys(f"runs/{run_id}/") == [key, f"runs/{run_id}/inputs/0-big.bin"]
        assert output["sha256"] == expected

        pid = s3_serve.process.pid
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from now
        before = _memory(pid)["VmRSS"]
        digest, size, chunks = hashlib.sha256(), 0, 0
        with client.stream("GET", output["url"], timeout=120) as download:
            assert download.status_code == 200
            assert download.headers["content-length"] == str(SIZE)
            for chunk in download.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
                chunks += 1
        peak = _memory(pid)["VmHWM"]
    assert (size, digest.hexdigest()) == (SIZE, expected)
    # Held whole, the file would raise the server's peak by 50 MB; streamed, by a few chunks.
    assert peak - before < 20 * MIB, f"the server's memory grew by {(peak - before) / MIB:.1f} MiB"


def test_a_deleted_run_leaves_nothing_in_the_bucket(s3_serve: Server, s3_bucket: Bucket) -> None:
    with s3_serve.client() as client:
        answer = client.post(
            "/api/v1/pipelines/upper/runs",
            files={"files": ("note.txt", b"quiet words", "text/plain")},
        )
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["id"]
        assert finished(client, run_id)["state"] == "succeeded"
        (output,) = client.get(f"/api/v1/runs/{run_id}/outputs").json()
        assert client.get(output["url"]).content == b"QUIET WORDS"
        assert len(s3_bucket.keys(f"runs/{run_id}/")) == 2
        assert client.delete(f"/api/v1/runs/{run_id}").status_code == 204
    assert s3_bucket.keys(f"runs/{run_id}/") == []
    assert not os.path.exists(s3_serve.data_dir / "runs" / run_id)

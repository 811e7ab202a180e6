"""Runs and data files kept on S3 (moto's server, through django-storages), on each database:
real workers whose local cache is not the server's fetch inputs from the bucket and store
outputs there; the API downloads them from the bucket; deleting and expiring remove them."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gristmill import Inputs, Pipeline, RunContext, RunState, map_step, task
from gristmill.app.service import Service, make_storage
from gristmill.app.submission import submit, wait
from gristmill.authoring import items
from gristmill.authoring.inputs import LocalFile
from gristmill.engine import retention
from gristmill.executors.inline import run_inline
from tests.integration.conftest import Workers, serving, use_executor
from tests.integration.s3 import REGION, Bucket
from tests.integration.test_access import bearer, make_user
from tests.integration.test_maps import dataset, expected, findings

if TYPE_CHECKING:
    from django.test import Client

API = "/api/v1"


@pytest.fixture
def on_s3(service: Service, bucket: Bucket, tmp_path: Path) -> Service:
    """The test's service keeping its files in ``bucket``, with its local cache in
    ``tmp_path/server``."""
    settings = replace(
        service.settings,
        storage="s3",
        s3_bucket=bucket.name,
        s3_endpoint_url=bucket.endpoint_url,
        s3_region=REGION,
    )
    storage = make_storage(replace(settings, data_dir=tmp_path / "server"))
    return replace(service, settings=settings, storage=storage)


@pytest.fixture
def site(on_s3: Service) -> Iterator[Service]:
    with serving(on_s3):
        yield on_s3


@pytest.fixture
def s3_workers(on_s3: Service, tmp_path: Path) -> Iterator[Workers]:
    """Workers on the same database and bucket, whose local cache is ``tmp_path/worker``."""
    pool = Workers(on_s3)
    pool.env = {"GRISTMILL_DATA_DIR": str(tmp_path / "worker")}
    yield pool
    pool.stop_all()


def test_a_run_fetches_its_input_from_the_bucket_and_stores_its_outputs_there(
    on_s3: Service, s3_workers: Workers, bucket: Bucket, wire: Client, tmp_path: Path
) -> None:
    words = tmp_path / "words.txt"
    words.write_text("hand it on", encoding="utf-8")
    s3_workers.start(1)
    run_id = submit("handing-on", [words], service=on_s3)
    assert bucket.keys() == [f"runs/{run_id}/inputs/0-words.txt"]
    status = wait(run_id, timeout=60, service=on_s3)
    assert status.state == RunState.SUCCEEDED, status.error
    output = f"runs/{run_id}/a1/upper/upper.txt"
    assert bucket.keys() == [output, f"runs/{run_id}/inputs/0-words.txt"]
    assert bucket.read(output) == b"HAND IT ON"
    assert status.result("count")["stdout_tail"] == "10 upper/upper.txt"
    worker_cache = tmp_path / "worker" / "runs" / run_id
    assert (worker_cache / "inputs" / "0-words.txt").read_text() == "hand it on"  # fetched
    assert not (tmp_path / "server" / output).exists()  # the server never had the output

    download = wire.get(f"{API}/runs/{run_id}/outputs/upper/upper.txt")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"HAND IT ON"
    assert download["Content-Length"] == "10"
    archive = wire.get(f"{API}/runs/{run_id}/outputs.zip")
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as opened:
        assert opened.read("upper/upper.txt") == b"HAND IT ON"

    assert wire.delete(f"{API}/runs/{run_id}").status_code == 204
    assert bucket.keys() == []
    assert not (tmp_path / "server" / "runs" / run_id).exists()


def test_celery_workers_keep_files_in_the_bucket_too(
    request: pytest.FixtureRequest,
    on_s3: Service,
    s3_workers: Workers,
    bucket: Bucket,
    tmp_path: Path,
) -> None:
    use_executor(request, s3_workers, "celery-redis")
    words = tmp_path / "words.txt"
    words.write_text("by celery", encoding="utf-8")
    s3_workers.start(1)
    run_id = submit("handing-on", [words], service=on_s3)
    status = wait(run_id, timeout=60, service=on_s3)
    assert status.state == RunState.SUCCEEDED, status.error
    assert bucket.read(f"runs/{run_id}/a1/upper/upper.txt") == b"BY CELERY"
    assert (tmp_path / "worker" / "runs" / run_id / "inputs" / "0-words.txt").is_file()


def test_an_input_gone_from_the_bucket_fails_its_run_saying_so(
    on_s3: Service, s3_workers: Workers, bucket: Bucket, tmp_path: Path
) -> None:
    words = tmp_path / "words.txt"
    words.write_text("lost", encoding="utf-8")
    run_id = submit("handing-on", [words], service=on_s3)
    bucket.client().delete_object(Bucket=bucket.name, Key=f"runs/{run_id}/inputs/0-words.txt")
    s3_workers.start(1)
    status = wait(run_id, timeout=60, service=on_s3)
    assert status.state == RunState.FAILED
    assert status.error == "an input of this run is not stored any more: 0-words.txt"


def test_an_output_gone_from_the_bucket_answers_404(
    on_s3: Service, s3_workers: Workers, bucket: Bucket, wire: Client, tmp_path: Path
) -> None:
    words = tmp_path / "words.txt"
    words.write_text("gone", encoding="utf-8")
    s3_workers.start(1)
    run_id = submit("handing-on", [words], service=on_s3)
    assert wait(run_id, timeout=60, service=on_s3).state == RunState.SUCCEEDED
    bucket.client().delete_object(Bucket=bucket.name, Key=f"runs/{run_id}/a1/upper/upper.txt")
    answer = wire.get(f"{API}/runs/{run_id}/outputs/upper/upper.txt")
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == (
        "the output 'upper.txt' of step 'upper' is not stored any more"
    )


def test_an_expired_run_leaves_nothing_in_the_bucket(
    on_s3: Service, s3_workers: Workers, bucket: Bucket, tmp_path: Path
) -> None:
    words = tmp_path / "words.txt"
    words.write_text("expire me", encoding="utf-8")
    kept = submit("trivial", [], {"value": 1}, service=on_s3)
    s3_workers.start(1)
    run_id = submit("handing-on", [words], service=on_s3)
    assert wait(run_id, timeout=60, service=on_s3).state == RunState.SUCCEEDED
    assert wait(kept, timeout=60, service=on_s3).state == RunState.SUCCEEDED
    assert len(bucket.keys(f"runs/{run_id}/")) == 2
    assert retention.remove(on_s3.store, on_s3.storage, run_id, reason="a test")
    assert bucket.keys(f"runs/{run_id}/") == []


def test_a_data_file_is_kept_in_the_bucket_and_used_as_an_input(
    on_s3: Service, s3_workers: Workers, bucket: Bucket, web: Client
) -> None:
    user = make_user()
    headers = bearer(user)
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("kept.txt", b"kept words", content_type="text/plain")
    answer = web.post(f"{API}/datafiles", {"file": upload}, headers=headers)
    assert answer.status_code == 201, answer.content
    file_id = answer.json()["id"]
    key = f"datafiles/{user.pk}/{file_id}-kept.txt"
    assert bucket.keys() == [key] and bucket.read(key) == b"kept words"
    download = web.get(f"{API}/datafiles/{file_id}/content", headers=headers)
    assert b"".join(download.streaming_content) == b"kept words"

    s3_workers.start(1)
    run = web.post(
        f"{API}/pipelines/any-source/runs",
        {"datafile": file_id},
        headers=headers,
    )
    assert run.status_code == 201, run.content
    run_id = run.json()["id"]
    status = wait(run_id, timeout=60, service=on_s3)
    assert status.state == RunState.SUCCEEDED, status.error
    [seen] = status.result("list_inputs")
    assert (seen["kind"], seen["text"]) == ("datafile", "kept words")  # the worker's copy
    assert bucket.read(f"runs/{run_id}/inputs/0-kept.txt") == b"kept words"

    assert web.delete(f"{API}/datafiles/{file_id}", headers=headers).status_code == 204
    assert bucket.keys("datafiles/") == []


def test_a_map_runs_its_batches_on_workers_with_caches_of_their_own(
    on_s3: Service, s3_workers: Workers, bucket: Bucket, tmp_path: Path
) -> None:
    for name in ("worker-1", "worker-2"):
        s3_workers.start(1, GRISTMILL_DATA_DIR=str(tmp_path / name))
    data = LocalFile(dataset(tmp_path / "data.jsonl", 3000))
    run_id = submit("mapping", [data], service=on_s3)
    status = wait(run_id, timeout=120, service=on_s3)
    assert status.state == RunState.SUCCEEDED, status.error
    assert findings(on_s3, run_id) == expected(3000)
    assert status.result("check")["items"] == 3000
    fetched = [
        tmp_path / name / "runs" / run_id / "inputs" / "0-data.jsonl"
        for name in ("worker-1", "worker-2")
    ]
    assert any(path.is_file() for path in fetched)


def test_spilled_batches_are_kept_in_the_bucket(
    databases: dict[str, Any], bucket: Bucket, tmp_path: Path
) -> None:
    @map_step(items=items.csv_rows(), batch_size=10, name="check")
    def check(item: Any, run: RunContext) -> Any:
        return {"kind": "item", "n": int(item["n"])}

    @task
    def reduce(run: RunContext) -> Any:
        return [f["n"] for _, f in run.findings("check")]

    pipeline = Pipeline("spilling", [check, reduce], inputs=Inputs(kinds=["file"]))
    service = Service.in_memory(
        [pipeline],
        tmp_path / "data",
        storage="s3",
        s3_bucket=bucket.name,
        s3_endpoint_url=bucket.endpoint_url,
        s3_region=REGION,
    )
    (tmp_path / "data.csv").write_text("n,x\n" + "".join(f"{n},a\n" for n in range(1, 26)))
    run_id = submit("spilling", [LocalFile(tmp_path / "data.csv")], service=service)
    assert run_inline(service, run_id) == RunState.SUCCEEDED
    assert bucket.keys(f"runs/{run_id}/a1/check/") == [
        f"runs/{run_id}/a1/check/batches/batch-00000{n}.jsonl" for n in (1, 2, 3)
    ]
    assert bucket.read(f"runs/{run_id}/a1/check/batches/batch-000003.jsonl").count(b"\n") == 5
    assert service.store.get_steps(run_id)["reduce"].result == list(range(1, 26))

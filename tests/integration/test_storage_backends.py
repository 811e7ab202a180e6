"""The storage interface, kept by both storages: local disk and an S3 bucket (moto's server,
through django-storages)."""

from __future__ import annotations

import hashlib
import io
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gristmill.app.service import make_storage
from gristmill.errors import ConfigurationError, TooLargeError
from gristmill.settings import Settings
from gristmill.storage import CHUNK, CachedStorage, Storage
from tests.integration.s3 import Bucket

Make = Callable[[Path], Storage]


@pytest.fixture(params=["local", "s3", "django"])
def make(
    request: pytest.FixtureRequest, databases: dict[str, Any], tmp_path: Path
) -> Iterator[Make]:
    """Makes a storage with its local root at a given directory: on local disk, on one bucket
    shared by every storage made (as by the machines of one site), or on the Django project's
    ``STORAGES["gristmill"]`` (here a Django FileSystemStorage elsewhere)."""
    if request.param == "local":
        yield lambda root: make_storage(Settings.from_env({}, data_dir=root))
    elif request.param == "s3":
        made: Bucket = request.getfixturevalue("bucket")
        yield lambda root: make_storage(Settings.from_env(made.env(), data_dir=root))
    else:
        from django.conf import settings as django_conf
        from django.test import override_settings

        backend = {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "django-storage")},
        }
        with override_settings(STORAGES={**django_conf.STORAGES, "gristmill": backend}):
            env = {"GRISTMILL_STORAGE": "django"}
            yield lambda root: make_storage(Settings.from_env(env, data_dir=root))


def remote_keys(storage: Storage, prefix: str) -> list[str]:
    """The keys a storage holds below ``prefix``: its files, for local disk."""
    if isinstance(storage, CachedStorage):
        return sorted(storage._keys(prefix))
    directory = storage.path(prefix)
    return sorted(storage.relative(p) for p in directory.rglob("*") if p.is_file())


def test_a_saved_stream_reads_back_whole_with_its_size_and_digest(
    make: Make, tmp_path: Path
) -> None:
    storage = make(tmp_path / "a")
    data = random.Random(1).randbytes(3 * CHUNK + 11)
    key, size, digest = storage.save_input("r1", 0, "blob.bin", io.BytesIO(data), max_size=1 << 30)
    assert (key, size, digest) == ("runs/r1/inputs/0-blob.bin", len(data), _sha(data))
    assert storage.exists(key) and not storage.exists("runs/r1/inputs/1-other.bin")
    with storage.open(key) as stream:
        pieces = list(iter(lambda: stream.read(CHUNK), b""))
    assert b"".join(pieces) == data and max(len(p) for p in pieces) <= CHUNK


def test_too_large_a_stream_keeps_nothing(make: Make, tmp_path: Path) -> None:
    storage = make(tmp_path / "a")
    with pytest.raises(TooLargeError):
        storage.save_input("r1", 0, "big.bin", io.BytesIO(b"x" * (CHUNK + 1)), max_size=CHUNK)
    assert not storage.exists("runs/r1/inputs/0-big.bin")
    assert remote_keys(storage, "runs/r1") == []
    assert not storage.path("runs/r1/inputs/0-big.bin").exists()


def test_another_machine_fetches_a_file_into_its_own_cache(
    databases: dict[str, Any], bucket: Bucket, tmp_path: Path
) -> None:
    here, there = (
        make_storage(Settings.from_env(bucket.env(), data_dir=tmp_path / name))
        for name in ("here", "there")
    )
    key, _, _ = here.save_input("r1", 0, "a.txt", io.BytesIO(b"hello"), max_size=100)
    assert bucket.keys() == [key] and bucket.read(key) == b"hello"
    assert not there.path(key).exists()
    fetched = there.local_path(key)
    assert fetched == tmp_path / "there" / key and fetched.read_bytes() == b"hello"
    with pytest.raises(FileNotFoundError):
        there.local_path("runs/r1/inputs/9-missing.txt")
    assert [p.name for p in fetched.parent.iterdir()] == ["0-a.txt"]  # no part file left


def test_a_kept_output_is_stored_under_its_work_directory_key(make: Make, tmp_path: Path) -> None:
    storage, other = make(tmp_path / "a"), make(tmp_path / "b")
    work = storage.work_dir("r1", 1, "step")
    (work / "out.csv").write_bytes(b"a,b\n")
    key = storage.keep(work / "out.csv")
    assert key == "runs/r1/a1/step/out.csv"
    with storage.open(key) as stream:
        assert stream.read() == b"a,b\n"
    if isinstance(storage, CachedStorage):
        assert other.local_path(key).read_bytes() == b"a,b\n"


def test_deleting_a_run_removes_its_files_and_no_other(make: Make, tmp_path: Path) -> None:
    storage = make(tmp_path / "a")
    for run in ("r1", "r10"):  # a run whose id starts with the other's
        storage.save_input(run, 0, "a.txt", io.BytesIO(b"a"), max_size=10)
        work = storage.work_dir(run, 1, "step")
        (work / "out.txt").write_text("out")
        storage.keep(work / "out.txt")
    storage.delete_run("r1")
    storage.delete_run("r1")  # idempotent
    assert remote_keys(storage, "runs/r1") == [] and not storage.run_dir("r1").exists()
    assert remote_keys(storage, "runs/r10") == [
        "runs/r10/a1/step/out.txt",
        "runs/r10/inputs/0-a.txt",
    ]


def test_other_attempts_of_a_step_are_dropped(make: Make, tmp_path: Path) -> None:
    storage = make(tmp_path / "a")
    for attempt in (1, 2):
        work = storage.work_dir("r1", attempt, "step")
        (work / "out.txt").write_text(str(attempt))
        storage.keep(work / "out.txt")
    storage.drop_other_attempts("r1", 2, "step")
    assert remote_keys(storage, "runs/r1") == ["runs/r1/a2/step/out.txt"]


def test_a_renamed_input_is_stored_under_its_new_name_only(make: Make, tmp_path: Path) -> None:
    storage = make(tmp_path / "a")
    key, _, _ = storage.save_input("r1", 0, "data", io.BytesIO(b"{}"), max_size=10)
    assert storage.rename(key, "data.json") == "runs/r1/inputs/data.json"
    assert remote_keys(storage, "runs/r1") == ["runs/r1/inputs/data.json"]
    with storage.open("runs/r1/inputs/data.json") as stream:
        assert stream.read() == b"{}"


def test_data_files_are_saved_and_deleted_by_key(make: Make, tmp_path: Path) -> None:
    storage = make(tmp_path / "a")
    key, size, _ = storage.save_datafile(7, "f1", "a.csv", io.BytesIO(b"x,y\n"), max_size=10)
    assert (key, size) == ("datafiles/7/f1-a.csv", 4) and storage.exists(key)
    with pytest.raises(ValueError, match="not a data file"):
        storage.delete_datafile("runs/r1/inputs/0-a.csv")
    storage.delete_datafile(key)
    assert not storage.exists(key) and not storage.path(key).exists()
    with pytest.raises(FileNotFoundError):
        storage.open(key)


def test_an_s3_prefix_puts_every_key_below_it(
    databases: dict[str, Any], bucket: Bucket, tmp_path: Path
) -> None:
    env = {**bucket.env(), "GRISTMILL_S3_PREFIX": "/mill/"}
    storage = make_storage(Settings.from_env(env, data_dir=tmp_path / "a"))
    key, _, _ = storage.save_input("r1", 0, "a.txt", io.BytesIO(b"a"), max_size=10)
    work = storage.work_dir("r1", 1, "step")
    (work / "out.txt").write_text("out")
    storage.keep(work / "out.txt")
    assert bucket.keys() == ["mill/runs/r1/a1/step/out.txt", "mill/runs/r1/inputs/0-a.txt"]
    with storage.open(key) as stream:
        assert stream.read() == b"a"
    storage.delete_run("r1")
    assert bucket.keys() == []


def test_s3_without_a_bucket_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="GRISTMILL_STORAGE=s3 needs GRISTMILL_S3_BUCKET"):
        Settings.from_env({"GRISTMILL_STORAGE": "s3"}, data_dir=tmp_path)


def test_s3_without_its_extra_is_refused_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "storages.backends.s3", None)  # as if not installed
    settings = Settings.from_env({"GRISTMILL_STORAGE": "s3", "GRISTMILL_S3_BUCKET": "b"})
    with pytest.raises(ConfigurationError, match=r"pip install 'gristmill\[s3\]'"):
        make_storage(settings)


def test_an_unknown_storage_is_refused_naming_the_setting(tmp_path: Path) -> None:
    settings = Settings.from_env({"GRISTMILL_STORAGE": "tape"}, data_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="GRISTMILL_STORAGE must be"):
        make_storage(settings)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

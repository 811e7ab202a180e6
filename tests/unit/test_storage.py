"""Run files on the filesystem: inputs streamed in, one work directory per step and attempt."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from gristmill.errors import TooLargeError
from gristmill.storage.filesystem import CHUNK, FilesystemStorage


class ReadRecorder(io.BytesIO):
    """A byte stream that remembers how much each read asked for."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.requests: list[int | None] = []

    def read(self, size: int | None = -1) -> bytes:
        self.requests.append(size)
        return super().read(size)


@pytest.fixture
def storage(tmp_path: Path) -> FilesystemStorage:
    return FilesystemStorage(tmp_path / "files")


def inputs_dir(storage: FilesystemStorage, run_id: str) -> Path:
    return storage.run_dir(run_id) / "inputs"


# save_input


def test_save_input_returns_the_relative_path_size_and_sha256(storage: FilesystemStorage) -> None:
    data = b"the quick brown fox\n" * 100
    saved = storage.save_input("r1", 1, "words.txt", io.BytesIO(data), max_size=1 << 20)
    assert saved == ("runs/r1/inputs/1-words.txt", len(data), hashlib.sha256(data).hexdigest())


def test_save_input_stores_the_bytes_at_the_returned_path(storage: FilesystemStorage) -> None:
    data = b'{"a": 1}'
    relative, _, _ = storage.save_input("r1", 1, "a.json", io.BytesIO(data), max_size=100)
    assert storage.path(relative).read_bytes() == data


def test_save_input_reads_the_stream_in_bounded_chunks(storage: FilesystemStorage) -> None:
    data = bytes(range(256)) * (3 * CHUNK // 256 + 7)
    stream = ReadRecorder(data)
    _, size, digest = storage.save_input("r1", 1, "big.bin", stream, max_size=len(data))
    assert (size, digest) == (len(data), hashlib.sha256(data).hexdigest())
    assert all(request is not None and 0 < request <= CHUNK for request in stream.requests)


def test_an_input_exactly_at_the_limit_is_accepted(storage: FilesystemStorage) -> None:
    _, size, _ = storage.save_input("r1", 1, "ten.txt", io.BytesIO(b"x" * 10), max_size=10)
    assert size == 10


def test_an_input_over_the_limit_is_refused_naming_the_file_and_the_limit(
    storage: FilesystemStorage,
) -> None:
    with pytest.raises(TooLargeError) as refused:
        storage.save_input("r1", 1, "eleven.txt", io.BytesIO(b"x" * 11), max_size=10)
    assert (refused.value.name, refused.value.max_size) == ("eleven.txt", 10)
    assert str(refused.value) == "eleven.txt is larger than the limit of 10 bytes"
    assert isinstance(refused.value, ValueError)


def test_an_input_over_the_limit_leaves_no_file(storage: FilesystemStorage) -> None:
    with pytest.raises(TooLargeError):
        storage.save_input("r1", 1, "big.bin", io.BytesIO(b"x" * (2 * CHUNK)), max_size=CHUNK)
    assert list(inputs_dir(storage, "r1").iterdir()) == []


class FailingStream(io.BytesIO):
    """A byte stream whose second read fails, like a client that goes away mid-upload."""

    def read(self, size: int | None = -1) -> bytes:
        if self.tell():
            raise ConnectionResetError("client went away")
        return super().read(CHUNK)


def test_an_input_whose_stream_fails_leaves_no_file(storage: FilesystemStorage) -> None:
    with pytest.raises(ConnectionResetError):
        storage.save_input("r1", 1, "cut.bin", FailingStream(b"x" * (2 * CHUNK)), max_size=1 << 20)
    assert list(inputs_dir(storage, "r1").iterdir()) == []


def test_an_input_never_replaces_a_file_already_there(storage: FilesystemStorage) -> None:
    relative, _, _ = storage.save_input("r1", 1, "a.txt", io.BytesIO(b"first"), max_size=10)
    with pytest.raises(FileExistsError):
        storage.save_input("r1", 1, "a.txt", io.BytesIO(b"second"), max_size=10)
    assert storage.path(relative).read_bytes() == b"first"


def test_an_input_is_synced_with_every_directory_that_gained_an_entry(
    storage: FilesystemStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(handle: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{handle}"))
        real_fsync(handle)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    relative, _, _ = storage.save_input("r1", 1, "a.txt", io.BytesIO(b"data"), max_size=10)
    # Nothing existed below the test's directory: each level gained an entry.
    made = storage.path(relative).relative_to(storage.root.parent).parents
    expected = [storage.path(relative), *(storage.root.parent / level for level in made)]
    assert sorted(synced) == sorted(str(path.resolve()) for path in expected)

    synced.clear()
    storage.save_input("r1", 2, "b.txt", io.BytesIO(b"more"), max_size=10)
    assert len(synced) == 2  # the file and its directory; the parents gained nothing


def test_inputs_are_kept_apart_by_position(storage: FilesystemStorage) -> None:
    first, _, _ = storage.save_input("r1", 1, "a.txt", io.BytesIO(b"one"), max_size=10)
    second, _, _ = storage.save_input("r1", 2, "a.txt", io.BytesIO(b"two"), max_size=10)
    assert storage.path(first).read_bytes() == b"one"
    assert storage.path(second).read_bytes() == b"two"


# work directories


def test_each_attempt_has_its_own_work_directory(storage: FilesystemStorage) -> None:
    first = storage.work_dir("r1", 1, "count")
    second = storage.work_dir("r1", 2, "count")
    assert first != second
    assert first.is_dir() and second.is_dir()


def test_a_work_directory_starts_empty(storage: FilesystemStorage) -> None:
    leftover = storage.work_dir("r1", 1, "count") / "half-written.csv"
    leftover.write_text("word,count\n")
    assert list(storage.work_dir("r1", 1, "count").iterdir()) == []


def test_drop_other_attempts_removes_the_step_from_every_other_attempt(
    storage: FilesystemStorage,
) -> None:
    old, kept, late = (storage.work_dir("r1", attempt, "count") for attempt in (1, 2, 3))
    (kept / "result.csv").write_text("kept")

    storage.drop_other_attempts("r1", 2, "count")

    assert (old.exists(), kept.exists(), late.exists()) == (False, True, False)
    assert (kept / "result.csv").read_text() == "kept"


def test_drop_other_attempts_keeps_other_steps(storage: FilesystemStorage) -> None:
    other = storage.work_dir("r1", 1, "parse")
    storage.work_dir("r1", 1, "count")
    storage.drop_other_attempts("r1", 2, "count")
    assert other.is_dir()


def test_drop_other_attempts_keeps_the_inputs(storage: FilesystemStorage) -> None:
    relative, _, _ = storage.save_input("r1", 1, "a.txt", io.BytesIO(b"a"), max_size=10)
    storage.drop_other_attempts("r1", 2, "inputs")
    assert storage.path(relative).read_bytes() == b"a"


def test_drop_other_attempts_of_a_run_without_files_does_nothing(
    storage: FilesystemStorage,
) -> None:
    storage.drop_other_attempts("never", 1, "count")
    assert not storage.run_dir("never").exists()


# delete_run


def test_delete_run_removes_every_file_of_the_run(storage: FilesystemStorage) -> None:
    storage.save_input("r1", 1, "a.txt", io.BytesIO(b"a"), max_size=10)
    storage.work_dir("r1", 1, "count")
    storage.delete_run("r1")
    assert not storage.run_dir("r1").exists()


def test_delete_run_keeps_other_runs(storage: FilesystemStorage) -> None:
    relative, _, _ = storage.save_input("r2", 1, "a.txt", io.BytesIO(b"a"), max_size=10)
    storage.save_input("r1", 1, "a.txt", io.BytesIO(b"a"), max_size=10)
    storage.delete_run("r1")
    assert storage.path(relative).exists()


def test_delete_run_twice_is_harmless(storage: FilesystemStorage) -> None:
    storage.work_dir("r1", 1, "count")
    storage.delete_run("r1")
    storage.delete_run("r1")
    assert not storage.run_dir("r1").exists()


def test_relative_gives_the_path_as_stored(storage: FilesystemStorage) -> None:
    path = storage.work_dir("r1", 3, "count") / "out.csv"
    assert storage.relative(path) == "runs/r1/a3/count/out.csv"

"""A remote storage through a local cache (:class:`CachedStorage`), on an in-memory remote side
that can be made to fail: whole or nothing, both ways."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from gristmill.storage import CHUNK, CachedStorage


class Broken(OSError):
    """The remote side failed."""


class _Cut(io.BytesIO):
    """A download that breaks after its first chunk."""

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() > 0:
            raise Broken("connection reset")
        return super().read(size)


class MemoryRemote(CachedStorage):
    """Objects in a dictionary; ``fail_uploads`` and ``cut_downloads`` make it fail."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.objects: dict[str, bytes] = {}
        self.fail_uploads = False
        self.cut_downloads = False

    def _upload(self, key: str, path: Path) -> None:
        if self.fail_uploads:
            raise Broken("the bucket is away")
        self.objects[key] = path.read_bytes()

    def _download(self, key: str) -> IO[bytes]:
        if key not in self.objects:
            raise FileNotFoundError(key)
        data = self.objects[key]
        return _Cut(data) if self.cut_downloads else io.BytesIO(data)

    def _has(self, key: str) -> bool:
        return key in self.objects

    def _remove(self, key: str) -> None:
        self.objects.pop(key, None)

    def _keys(self, prefix: str) -> Iterator[str]:
        return iter([k for k in self.objects if k.startswith(prefix + "/")])


@pytest.fixture
def remote(tmp_path: Path) -> MemoryRemote:
    return MemoryRemote(tmp_path / "cache")


def test_a_failed_upload_keeps_nothing_local_either(remote: MemoryRemote) -> None:
    remote.fail_uploads = True
    with pytest.raises(Broken):
        remote.save_input("r1", 0, "a.txt", io.BytesIO(b"abc"), max_size=10)
    assert remote.objects == {} and not remote.path("runs/r1/inputs/0-a.txt").exists()
    remote.fail_uploads = False  # and the same input can be saved again
    assert remote.save_input("r1", 0, "a.txt", io.BytesIO(b"abc"), max_size=10)[1] == 3


def test_a_cut_download_leaves_no_local_copy_and_no_part_file(remote: MemoryRemote) -> None:
    remote.objects["runs/r1/inputs/0-a.bin"] = b"x" * (3 * CHUNK)
    remote.cut_downloads = True
    with pytest.raises(Broken):
        remote.local_path("runs/r1/inputs/0-a.bin")
    assert list(remote.path("runs/r1/inputs").iterdir()) == []
    remote.cut_downloads = False
    assert remote.local_path("runs/r1/inputs/0-a.bin").stat().st_size == 3 * CHUNK


def test_a_local_copy_is_used_without_asking_the_remote_side(remote: MemoryRemote) -> None:
    key, _, _ = remote.save_input("r1", 0, "a.txt", io.BytesIO(b"abc"), max_size=10)
    remote.cut_downloads = True  # any download would now fail
    remote.objects[key] = b"zzzz"  # and would read other bytes
    assert remote.local_path(key).read_bytes() == b"abc"


def test_open_reads_the_remote_side_which_is_the_truth(remote: MemoryRemote) -> None:
    key, _, _ = remote.save_input("r1", 0, "a.txt", io.BytesIO(b"abc"), max_size=10)
    remote.path(key).unlink()  # a cache cleared by hand
    with remote.open(key) as stream:
        assert stream.read() == b"abc"
    with pytest.raises(FileNotFoundError):
        remote.open("runs/r1/inputs/1-none.txt")


def test_a_failed_output_upload_is_an_error_of_keep(remote: MemoryRemote) -> None:
    work = remote.work_dir("r1", 1, "step")
    (work / "out.txt").write_text("out")
    remote.fail_uploads = True
    with pytest.raises(Broken):
        remote.keep(work / "out.txt")
    assert remote.objects == {}

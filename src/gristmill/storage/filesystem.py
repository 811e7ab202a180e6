"""Files of runs on a local (or shared) filesystem: the default storage.

Layout under the root::

    runs/<run id>/inputs/<n>-<name>        the inputs, as received
    runs/<run id>/a<attempt>/<step>/       one step's work directory in one attempt

An attempt writes only under its own ``a<attempt>`` directory, so a late attempt can never
overwrite the files of the current one; outputs become visible only when the database row that
points at them commits.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from pathlib import Path
from typing import IO

from gristmill.errors import TooLargeError
from gristmill.storage.base import CHUNK, Storage


def _make_directories(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; return the directories that gained an entry."""
    try:
        os.mkdir(path)
    except FileExistsError:
        return []
    except FileNotFoundError:
        grown = _make_directories(path.parent)
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            os.mkdir(path)
        return [*grown, path.parent]
    return [path.parent]


def _fsync_directory(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    except OSError as error:
        if error.errno != errno.EINVAL:  # EINVAL: a filesystem that cannot sync directories
            raise
    finally:
        os.close(handle)


class FilesystemStorage(Storage):
    """Run files under one root directory: a key's file is its :meth:`path` (the default)."""

    def save(self, key: str, stream: IO[bytes], *, name: str, max_size: int) -> tuple[int, str]:
        return write_whole(self.path(key), name, stream, max_size)

    def keep(self, path: Path) -> str:
        return self.relative(path)

    def open(self, key: str) -> IO[bytes]:
        return self.path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        """Remove every file below ``prefix`` (a file vanishing meanwhile, as when two
        processes remove the same run, is not an error)."""
        directory = self.path(prefix)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(directory)
        if directory.exists():  # another remover took entries from under us: finish
            shutil.rmtree(directory)

    def local_path(self, key: str) -> Path:
        return self.path(key)

    def _drop_remote(self, prefix: str) -> None:
        """Nothing: the local files were the stored ones."""

    def rename(self, key: str, name: str) -> str:
        path = self.path(key)
        target = path.with_name(name)
        path.rename(target)
        return self.relative(target)


def write_whole(target: Path, name: str, stream: IO[bytes], max_size: int) -> tuple[int, str]:
    """Stream into ``target`` (a new file, in a path we made: nothing to resolve); return its
    size and sha256. Raises :class:`TooLargeError` (removing it) past ``max_size`` bytes."""
    # Whole or not at all. No row points at ``target`` yet, so nobody reads it: it is
    # written in place (O_EXCL: never over another file), fsynced, and removed on failure.
    directory = target.parent
    grown = _make_directories(directory)
    digest = hashlib.sha256()
    size = 0
    handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_size:
                    raise TooLargeError(name, max_size=max_size)
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        # The bytes are on disk; the names that lead to them must be too.
        for changed in (directory, *grown):
            _fsync_directory(changed)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        raise
    return size, digest.hexdigest()

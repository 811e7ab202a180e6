"""Files of runs on a local (or shared) filesystem.

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

CHUNK = 1 << 20


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


class FilesystemStorage:
    """Run files under one root directory."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, relative: str) -> Path:
        """The absolute path of a stored file given its path relative to the root."""
        return self.root / relative

    def relative(self, path: Path) -> str:
        """The path relative to the root, as stored in the database."""
        return path.resolve().relative_to(self.root.resolve()).as_posix()

    def rename(self, relative: str, name: str) -> str:
        """Give a stored file another base name in its directory; return its new relative
        path."""
        path = self.path(relative)
        target = path.with_name(name)
        path.rename(target)
        return self.relative(target)

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def work_dir(self, run_id: str, attempt: int, step: str) -> Path:
        """A step's private work directory for one attempt (created, empty on first use)."""
        path = self.run_dir(run_id) / f"a{attempt}" / step
        if path.exists():
            # A claim of the same attempt number never happens twice; a leftover directory is
            # from a crash before the attempt number was durable. Start clean.
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path

    def drop_other_attempts(self, run_id: str, keep_attempt: int, step: str) -> None:
        """Remove a step's work directories from every attempt but ``keep_attempt``."""
        run_dir = self.run_dir(run_id)
        with contextlib.suppress(FileNotFoundError):
            for entry in run_dir.iterdir():
                if entry.name.startswith("a") and entry.name != f"a{keep_attempt}":
                    shutil.rmtree(entry / step, ignore_errors=True)

    def save_input(
        self, run_id: str, position: int, name: str, stream: IO[bytes], *, max_size: int
    ) -> tuple[str, int, str]:
        """Stream ``stream`` into the run's inputs in chunks, hashing as it goes.

        Returns ``(relative path, size, sha256)``. Raises :class:`TooLargeError` (and keeps
        nothing) if more than ``max_size`` bytes arrive.
        """
        target = self.run_dir(run_id) / "inputs" / f"{position}-{name}"
        return self._write_whole(target, name, stream, max_size)

    def delete_run(self, run_id: str) -> None:
        """Remove every file of a run (idempotent).

        Raises :class:`OSError` if some cannot be removed (a file vanishing meanwhile, as when
        two processes remove the same run, is not an error).
        """
        directory = self.run_dir(run_id)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(directory)
        if directory.exists():  # another remover took entries from under us: finish
            shutil.rmtree(directory)

    def save_datafile(
        self, owner_id: int, file_id: str, name: str, stream: IO[bytes], *, max_size: int
    ) -> tuple[str, int, str]:
        """Stream a user's data file to ``datafiles/<owner id>/<file id>-<name>`` in chunks,
        hashing as it goes; ``name`` must already be a safe base name.

        Returns ``(relative path, size, sha256)``. Raises :class:`TooLargeError` (and keeps
        nothing) if more than ``max_size`` bytes arrive.
        """
        target = self.root / "datafiles" / str(owner_id) / f"{file_id}-{name}"
        return self._write_whole(target, name, stream, max_size)

    def delete_datafile(self, relative: str) -> None:
        """Remove a stored data file given its relative path (idempotent)."""
        path = self.path(relative)
        if path.parent.parent != self.root / "datafiles":
            raise ValueError(f"{relative!r} is not a data file's path")
        path.unlink(missing_ok=True)

    def _write_whole(
        self, target: Path, name: str, stream: IO[bytes], max_size: int
    ) -> tuple[str, int, str]:
        """Stream into ``target`` (below the root, a path we made: nothing to resolve); return
        its relative path, size and sha256."""
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
        return target.relative_to(self.root).as_posix(), size, digest.hexdigest()

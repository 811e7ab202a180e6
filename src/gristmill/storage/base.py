"""The storage interface: where run inputs, outputs and data files are kept.

Every stored file has a *key*: its path relative to the storage, with ``/`` separators, as the
database keeps it (``runs/<run id>/inputs/<n>-<name>``, ``runs/<run id>/a<attempt>/<step>/…``,
``datafiles/<owner id>/<file id>-<name>``). A storage also has a local *root* (the data
directory): work directories are local scratch below it, and :meth:`Storage.path` is where a
key's file is (or would be) on this machine. For :class:`~gristmill.storage.FilesystemStorage`
that is the stored file itself; for a remote storage it is the worker's cache of it, filled by
:meth:`Storage.local_path`.

The surface (all keys are those this module made; none comes from a user):

* :meth:`save` a stream under a key, in chunks, hashing as it goes → ``(key, size, sha256)``;
* :meth:`keep` a file a step wrote in its work directory → its key (uploaded, if remote);
* :meth:`open` a key for reading, as a stream read in chunks (never loaded whole);
* :meth:`exists`, :meth:`delete` a key, :meth:`delete_prefix` every key below a prefix;
* :meth:`local_path`: the key's file on this machine, fetched first if need be.
"""

from __future__ import annotations

import contextlib
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO

CHUNK = 1 << 20
"""The size of the chunks files are read and written in."""


class Storage(ABC):
    """Run files and data files under keys; work directories under a local root."""

    def __init__(self, root: Path):
        self.root = Path(root)

    # -- the primitives a backend provides ---------------------------------------------------

    @abstractmethod
    def save(self, key: str, stream: IO[bytes], *, name: str, max_size: int) -> tuple[int, str]:
        """Store ``stream`` under ``key`` (new) in chunks; return its size and SHA-256.

        Raises :class:`~gristmill.errors.TooLargeError` naming ``name`` (and keeps nothing) if
        more than ``max_size`` bytes arrive.
        """

    @abstractmethod
    def keep(self, path: Path) -> str:
        """Store the local file ``path`` (below the root, written by a step) under its key and
        return the key; it stays where it is, as the local copy."""

    @abstractmethod
    def open(self, key: str) -> IO[bytes]:
        """The stored file ``key``, open for reading in chunks. Raises
        :class:`FileNotFoundError` if there is none."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a file is stored under ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the file ``key`` and its local copy (idempotent)."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Remove every file whose key starts with ``prefix/`` and their local copies
        (idempotent)."""

    @abstractmethod
    def local_path(self, key: str) -> Path:
        """The file ``key`` on this machine (fetched into the local cache first if it is not
        there), for tasks and tools that need a path."""

    @abstractmethod
    def rename(self, key: str, name: str) -> str:
        """Give a stored file another base name next to it; return its new key."""

    # -- the local layout ---------------------------------------------------------------------

    def path(self, key: str) -> Path:
        """Where the file ``key`` is (or would be) on this machine; see :meth:`local_path`."""
        return self.root / key

    def relative(self, path: Path) -> str:
        """The key of a local path below the root."""
        return path.resolve().relative_to(self.root.resolve()).as_posix()

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
        """Remove a step's files from every attempt but ``keep_attempt``."""
        run_dir = self.run_dir(run_id)
        with contextlib.suppress(FileNotFoundError):
            for entry in run_dir.iterdir():
                if entry.name.startswith("a") and entry.name != f"a{keep_attempt}":
                    shutil.rmtree(entry / step, ignore_errors=True)
                    self._drop_remote(f"runs/{run_id}/{entry.name}/{step}")

    @abstractmethod
    def _drop_remote(self, prefix: str) -> None:
        """Remove the stored files below ``prefix`` whose local copies were just removed."""

    # -- runs and data files ----------------------------------------------------------------

    def save_input(
        self, run_id: str, position: int, name: str, stream: IO[bytes], *, max_size: int
    ) -> tuple[str, int, str]:
        """Stream ``stream`` into the run's inputs; return ``(key, size, sha256)``. Raises
        :class:`~gristmill.errors.TooLargeError` (keeping nothing) past ``max_size`` bytes."""
        key = f"runs/{run_id}/inputs/{position}-{name}"
        return (key, *self.save(key, stream, name=name, max_size=max_size))

    def delete_run(self, run_id: str) -> None:
        """Remove every file of a run (idempotent). Raises :class:`OSError` if some cannot be
        removed."""
        self.delete_prefix(f"runs/{run_id}")

    def save_datafile(
        self, owner_id: int, file_id: str, name: str, stream: IO[bytes], *, max_size: int
    ) -> tuple[str, int, str]:
        """Stream a user's data file to ``datafiles/<owner id>/<file id>-<name>``; ``name``
        must already be a safe base name. Returns ``(key, size, sha256)``; raises
        :class:`~gristmill.errors.TooLargeError` (keeping nothing) past ``max_size`` bytes."""
        key = f"datafiles/{owner_id}/{file_id}-{name}"
        return (key, *self.save(key, stream, name=name, max_size=max_size))

    def delete_datafile(self, key: str) -> None:
        """Remove a stored data file given its key (idempotent)."""
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != "datafiles" or ".." in parts:
            raise ValueError(f"{key!r} is not a data file's path")
        self.delete(key)

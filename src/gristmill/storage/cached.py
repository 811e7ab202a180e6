"""A remote storage seen through a local cache: the base of object stores (S3 and the like).

The remote side holds every stored file under its key; the local root (the data directory)
holds the work directories and a cache of the files this machine has used, at the same
layout. A step's outputs are written in its work directory, which is their cache location,
and uploaded by :meth:`CachedStorage.keep` before the row that names them commits. A file
saved here (an upload) is written to the cache first (hashed, size-checked, whole or not at
all) and then uploaded, so nothing is ever held in memory whole. Reading for downloads goes to
the remote side (:meth:`CachedStorage.open`), which is the truth; tasks read local copies
(:meth:`CachedStorage.local_path`).

A backend subclasses this with five primitives: ``_upload``, ``_download``, ``_has``,
``_remove`` and ``_keys``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from abc import abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from gristmill.storage.base import CHUNK, Storage
from gristmill.storage.filesystem import write_whole


class CachedStorage(Storage):
    """Files kept by a remote backend, with local copies under ``root``."""

    # -- the remote primitives --------------------------------------------------------------

    @abstractmethod
    def _upload(self, key: str, path: Path) -> None:
        """Store the local file ``path`` under ``key``, streamed (replacing any)."""

    @abstractmethod
    def _download(self, key: str) -> IO[bytes]:
        """The remote file ``key`` as a stream; :class:`FileNotFoundError` if missing."""

    @abstractmethod
    def _has(self, key: str) -> bool:
        """Whether the remote side holds ``key``."""

    @abstractmethod
    def _remove(self, key: str) -> None:
        """Remove the remote file ``key`` (idempotent)."""

    @abstractmethod
    def _keys(self, prefix: str) -> Iterable[str]:
        """The remote keys below ``prefix/``."""

    # -- the storage interface ----------------------------------------------------------------

    def save(self, key: str, stream: IO[bytes], *, name: str, max_size: int) -> tuple[int, str]:
        local = self.path(key)
        size, digest = write_whole(local, name, stream, max_size)
        try:
            self._upload(key, local)
        except BaseException:
            local.unlink(missing_ok=True)
            raise
        return size, digest

    def keep(self, path: Path) -> str:
        key = self.relative(path)
        self._upload(key, path)
        return key

    def open(self, key: str) -> IO[bytes]:
        return self._download(key)

    def exists(self, key: str) -> bool:
        return self._has(key)

    def delete(self, key: str) -> None:
        self._remove(key)
        self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        self._drop_remote(prefix)
        directory = self.path(prefix)
        shutil.rmtree(directory, ignore_errors=True)
        if directory.exists():  # another remover took entries from under us: finish
            shutil.rmtree(directory)

    def _drop_remote(self, prefix: str) -> None:
        for key in list(self._keys(prefix)):
            self._remove(key)

    def local_path(self, key: str) -> Path:
        path = self.path(key)
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        try:
            with self._download(key) as source, part.open("wb") as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
            os.replace(part, path)  # whole or not at all, also with two fetchers at once
        finally:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
        return path

    def rename(self, key: str, name: str) -> str:
        local = self.local_path(key)
        target = local.with_name(name)
        local.rename(target)
        new_key = self.relative(target)
        self._upload(new_key, target)
        self._remove(key)
        return new_key

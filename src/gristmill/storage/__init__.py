"""Artifact storage: where inputs, work directories and outputs live (see
:mod:`gristmill.storage.base` for the interface)."""

from gristmill.storage.base import CHUNK, Storage
from gristmill.storage.cached import CachedStorage
from gristmill.storage.filesystem import FilesystemStorage

__all__ = ["CHUNK", "CachedStorage", "FilesystemStorage", "Storage"]

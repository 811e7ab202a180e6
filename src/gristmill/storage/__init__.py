"""Artifact storage: where inputs, work directories and outputs live."""

from gristmill.storage.filesystem import FilesystemStorage

__all__ = ["FilesystemStorage"]

"""A store backend that needs psycopg (for the test of the message naming the extra)."""

from __future__ import annotations

import psycopg  # noqa: F401 - the dependency whose absence is tested

from gristmill.app.service import memory_store as open_store

__all__ = ["open_store"]

"""A store in this process's memory: the same contract as the database, with no database.

:class:`MemoryStore` keeps runs, steps, outputs, units and log lines in dictionaries under one
lock, and follows the rules of :class:`gristmill.store.base.Store` exactly as the SQL store
does: claims in unit order per queue, fencing by attempt, requeue, expiry, the attempt limit
of lost workers with the same log lines and failure messages. Values go in and out as JSON, as
they do through a database, so a test sees what a worker would read back.

It is meant for tests: gristmill's own engine tests, and pipeline authors' tests of their
pipelines (``Service.in_memory``). It lives and dies with the process: a worker pool, a web
server or another process cannot share it (``supports_processes`` is false).
"""

from __future__ import annotations

from gristmill.store.memory.maps import MemoryStore

__all__ = ["MemoryStore"]

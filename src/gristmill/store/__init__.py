"""Store backends: where runs, steps, units, leases and log lines are kept.

The contract every backend fulfils is :class:`gristmill.store.base.Store` (its docstring
states the fencing rules). The backends, chosen by name with ``GRISTMILL_STORE`` (see
:mod:`gristmill.app.service`):

* ``sql`` (the default): :class:`gristmill.store.sql.SqlStore`, raw SQL for SQLite or
  PostgreSQL, on the connections Django opens (:class:`gristmill.server.store.DjangoStore`);
  shared by every process of an installation.
* ``memory``: :class:`gristmill.store.memory.MemoryStore`, in this process only, for tests of
  the engine and of pipelines, with no database and no Django.

Nothing in this package imports Django.
"""

"""The SQL store, for SQLite and PostgreSQL, without Django.

* :mod:`~gristmill.store.sql.policy`: :class:`SqlPolicy`, the policy (claim, lease, fence,
  finish, requeue, expire, reap), written once; :mod:`~gristmill.store.sql.maps`:
  :class:`SqlStore`, that policy with map steps (batches, findings, the remaining counter);
* :mod:`~gristmill.store.sql.connection`: its base, guarded calls, doorbells, heartbeats, and
  :data:`~gristmill.store.sql.connection.DIALECTS`, the dialect of each database;
* :mod:`~gristmill.store.sql.dialect`: what a dialect provides and what a connection source
  is; :mod:`~gristmill.store.sql.sqlite` and :mod:`~gristmill.store.sql.postgresql`, the two;
* ``queries.sql`` (read by :mod:`~gristmill.store.sql.queries`): every statement, by name;
* :mod:`~gristmill.store.sql.columns`: the columns of a loaded run, the PL/pgSQL generated
  from them, and the decoding by column name.

The store is handed a :class:`~gristmill.store.sql.dialect.ConnectionSource`; Django's is
:class:`gristmill.server.store.DjangoConnections`.
"""

from __future__ import annotations

from gristmill.store.sql.dialect import ConnectionSource, Fenced
from gristmill.store.sql.maps import SqlStore

__all__ = ["ConnectionSource", "Fenced", "SqlStore"]

"""The columns the SQL store reads, the query that loads a run with its inputs, steps and
outputs, and the decoding of what it returns, by column name.

The column lists here are the one description of a loaded run: SQLite's load query, the
PL/pgSQL functions (:func:`load_function`, :func:`claim_function`, created by migrations that
call them) and the decoding are all generated from them. A new column is one edit here, plus a
Django migration that adds it and calls :func:`load_function` again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from gristmill.states import RunState, UnitKind, UnitState
from gristmill.store.records import InputRecord, OutputRecord, RunRecord, StepRecord

RUN_COLUMNS = (
    "id",
    "pipeline",
    "state",
    "params",
    "queue",
    "created_at",
    "expires_at",
    "started_at",
    "finished_at",
    "current_step",
    "stage",
    "progress_done",
    "progress_total",
    "error_message",
    "error_ref",
    "error_traceback",
    "cancel_requested",
    "owner_id",
    "ancestor_id",
    "pinned",
    "cancel_requested_at",
    "cancel_requested_by",
    "interrupted_step",
)
"""The run's own columns, as :class:`RunRecord` holds them."""

INPUT_COLUMNS = ("name", "path", "size", "sha256", "media_type", "kind", "source")
STEP_COLUMNS = (
    "name",
    "position",
    "state",
    "attempt",
    "result",
    "fingerprint",
    "error",
    "accepted",
    "started_at",
    "finished_at",
)
OUTPUT_COLUMNS = ("step", "name", "path", "size", "sha256", "media_type")

CHILDREN = (
    ("inputs", "gristmill_input", INPUT_COLUMNS, "position"),
    ("steps", "gristmill_step", STEP_COLUMNS, "position"),
    ("outputs", "gristmill_output", OUTPUT_COLUMNS, "id"),
)
"""A run's rows in other tables: (name in the loaded run, table, columns, order)."""

LATEST_ATTEMPT = (
    "(SELECT attempt FROM gristmill_unit u WHERE u.run_id = r.id "
    f"AND u.kind = '{UnitKind.RUN.value}' ORDER BY u.id DESC LIMIT 1)"
)
"""The attempt of the run's latest ``run`` unit (a map step's batch units have their own)."""
LOADED = (*RUN_COLUMNS, *(name for name, *_ in CHILDREN), "attempt")
"""The names of what a load returns, in order: the run's columns, its children, its attempt."""


def _pairs(columns: tuple[str, ...], table: str) -> str:
    return ", ".join(f"'{column}', {table}.{column}" for column in columns)


def sqlite_load_columns(*, attempt: bool = True) -> str:
    """The select list that loads a run ``r`` on SQLite, in the order of :data:`LOADED`
    (without the attempt when ``attempt`` is false: a claim knows its own). Children come as
    JSON arrays of arrays in their columns' order, which :func:`decode` names: cheaper for
    SQLite to build than objects."""
    children = [
        f"(SELECT json_group_array(json_array({', '.join(columns)})) FROM (SELECT * FROM "
        f"{table} x WHERE x.run_id = r.id ORDER BY {order}))"
        for _, table, columns, order in CHILDREN
    ]
    latest = [LATEST_ATTEMPT] if attempt else []
    return ", ".join([*(f"r.{column}" for column in RUN_COLUMNS), *children, *latest])


def load_function() -> str:
    """``CREATE OR REPLACE FUNCTION gristmill_load(uuid)`` for PostgreSQL: the run, its
    children and its latest attempt as one JSON object named by :data:`LOADED`.

    PL/pgSQL keeps the plan of the statement inside a function for the session, so the load
    is planned once per connection instead of on every call. VOLATILE, not STABLE: called beside
    ``gristmill_claim()``, which takes fresh snapshots, it must see the run that the claim just
    found, even if it committed after the calling statement began.
    """
    children = [
        f"'{name}', (SELECT coalesce(json_agg(json_build_object({_pairs(columns, 'x')}) "
        f"ORDER BY x.{order}), '[]') FROM {table} x WHERE x.run_id = r.id)"
        for name, table, columns, order in CHILDREN
    ]
    fields = ", ".join([_pairs(RUN_COLUMNS, "r"), *children, f"'attempt', {LATEST_ATTEMPT}"])
    return (
        "CREATE OR REPLACE FUNCTION gristmill_load(p_run uuid) RETURNS json "
        "LANGUAGE plpgsql VOLATILE AS $$ BEGIN RETURN (SELECT json_build_object("
        f"{fields}) FROM gristmill_run r WHERE r.id = p_run); END $$;"
    )


def claim_function() -> str:
    """``CREATE OR REPLACE FUNCTION gristmill_claim(...)`` for PostgreSQL: claim up to
    ``p_limit`` queued units of the given queues (all when NULL) for ``p_worker`` and move their
    runs to running, returning (unit, run, attempt, kind). The states come from
    :mod:`gristmill.states`. The order is the fair one of ``pick_units`` (queries.sql):
    priority, the turn each unit was given when queued, id, read from the unit table's order
    indexes. A run already running is not written (nor locked): the batches of a map are
    claimed while other workers write that run's progress. Each claimed unit's run is updated
    by its key, one statement per run: a join or semi-join with the claimed units let
    PostgreSQL, without statistics for a fresh table, read every queued run on each claim."""
    queued, claimed = UnitState.QUEUED.value, UnitState.CLAIMED.value
    return f"""
CREATE OR REPLACE FUNCTION gristmill_claim(
    p_worker text, p_queues text[], p_lease_until double precision, p_limit integer,
    p_now timestamptz
)
RETURNS TABLE (out_unit bigint, out_run uuid, out_attempt integer, out_kind varchar)
LANGUAGE plpgsql AS $$
BEGIN
    FOR out_unit, out_run, out_attempt, out_kind IN
        WITH picked AS (
            SELECT u.id FROM gristmill_unit u
            WHERE u.state = '{queued}' AND (p_queues IS NULL OR u.queue = ANY (p_queues))
            ORDER BY u.priority DESC, u.turn, u.id
            LIMIT p_limit
            FOR UPDATE OF u SKIP LOCKED
        )
        UPDATE gristmill_unit u
        SET state = '{claimed}', attempt = u.attempt + 1, worker = p_worker,
            lease_until = p_lease_until
        FROM picked WHERE u.id = picked.id
        RETURNING u.id, u.run_id, u.attempt::integer, u.kind::varchar
    LOOP
        UPDATE gristmill_run
        SET state = '{RunState.RUNNING.value}', started_at = COALESCE(started_at, p_now)
        WHERE id = out_run AND state = '{RunState.QUEUED.value}';
        RETURN NEXT;
    END LOOP;
END
$$;
"""


def from_json(value: Any) -> Any:
    """A JSON column's value: parsed when the database handed back text."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def to_datetime(value: Any) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite and JSON hand them back as text, SQLite
    without saying they are UTC)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def run_id_of(key: Any) -> str:
    """The canonical run id of a stored key (a UUID, or its hex on SQLite)."""
    return str(uuid.UUID(str(key)))


def _children(value: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = from_json(value) or []
    return [row if isinstance(row, dict) else dict(zip(columns, row, strict=True)) for row in rows]


def decode(loaded: Mapping[str, Any]) -> tuple[RunRecord, dict[str, StepRecord]]:
    """A run and its steps from a load (:data:`LOADED` names to values; children as objects,
    or as arrays in their columns' order); the attempt is 0 when the load has none."""
    by_step: dict[str, list[OutputRecord]] = {}
    for output in _children(loaded["outputs"], OUTPUT_COLUMNS):
        by_step.setdefault(output["step"], []).append(OutputRecord(**output))
    steps = {}
    for step in _children(loaded["steps"], STEP_COLUMNS):
        result = step["result"]
        steps[step["name"]] = StepRecord(
            name=step["name"],
            position=step["position"],
            state=step["state"],
            attempt=step["attempt"],
            result=json.loads(result) if isinstance(result, str) else result,
            fingerprint=from_json(step["fingerprint"]),
            error=step["error"],
            accepted=bool(step["accepted"]),
            started_at=step["started_at"],
            finished_at=step["finished_at"],
            outputs=by_step.get(step["name"], []),
        )
    ancestor = loaded["ancestor_id"]
    run = RunRecord(
        id=run_id_of(loaded["id"]),
        pipeline=loaded["pipeline"],
        state=RunState(loaded["state"]),
        params=from_json(loaded["params"]),
        inputs=[InputRecord(**values) for values in _children(loaded["inputs"], INPUT_COLUMNS)],
        queue=loaded["queue"],
        created_at=to_datetime(loaded["created_at"]),  # type: ignore[arg-type]
        expires_at=to_datetime(loaded["expires_at"]),  # type: ignore[arg-type]
        started_at=to_datetime(loaded["started_at"]),
        finished_at=to_datetime(loaded["finished_at"]),
        current_step=loaded["current_step"],
        stage=loaded["stage"],
        progress_done=loaded["progress_done"],
        progress_total=loaded["progress_total"],
        error_message=loaded["error_message"],
        error_ref=loaded["error_ref"],
        error_traceback=loaded["error_traceback"],
        cancel_requested=bool(loaded["cancel_requested"]),
        attempt=loaded.get("attempt") or 0,
        owner_id=loaded["owner_id"],
        ancestor_id=run_id_of(ancestor) if ancestor else None,
        pinned=bool(loaded["pinned"]),
        cancel_requested_at=to_datetime(loaded["cancel_requested_at"]),
        cancel_requested_by=loaded["cancel_requested_by"],
        interrupted_step=loaded["interrupted_step"],
    )
    return run, steps

"""Between database rows and the store's records: the columns the store reads, the one query
that loads a run with its inputs, steps and outputs, and the decoding of what it returns."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from gristmill.states import RunState
from gristmill.store.base import InputRecord, OutputRecord, RunRecord, StepRecord

RUN_FIELDS = (
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
STEP_COLUMNS = (
    "name, position, state, attempt, result, fingerprint, error, accepted, started_at, finished_at"
)
INPUT_COLUMNS = "name, path, size, sha256, media_type, kind, source"
OUTPUT_COLUMNS = "step, name, path, size, sha256, media_type"
UPSERT_STEP = (
    "INSERT INTO gristmill_step (run_id, name, position, state, attempt, result, fingerprint, "
    "error, accepted, started_at, finished_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (run_id, name) DO UPDATE SET position = excluded.position, "
    "state = excluded.state, attempt = excluded.attempt, result = excluded.result, "
    "fingerprint = excluded.fingerprint, error = excluded.error, accepted = excluded.accepted, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at"
)
LATEST_ATTEMPT = (
    "(SELECT attempt FROM gristmill_unit u WHERE u.run_id = r.id ORDER BY u.id DESC LIMIT 1)"
)


def load_columns(vendor: str) -> str:
    """The run's columns, then its inputs, steps and outputs as JSON arrays: everything the
    engine needs about a run, in one query."""

    def rows(columns: str, table: str, order: str) -> str:
        if vendor == "postgresql":
            return (
                f"(SELECT coalesce(json_agg(json_build_array({columns}) ORDER BY {order}), "
                f"'[]') FROM {table} x WHERE x.run_id = r.id)"
            )
        return (
            f"(SELECT json_group_array(json_array({columns})) FROM (SELECT * FROM {table} x "
            f"WHERE x.run_id = r.id ORDER BY {order}))"
        )

    run = ", ".join(f"r.{field}" for field in RUN_FIELDS)
    return ", ".join(
        [
            run,
            rows(INPUT_COLUMNS, "gristmill_input", "position"),
            rows(STEP_COLUMNS, "gristmill_step", "position"),
            rows(OUTPUT_COLUMNS, "gristmill_output", "id"),
        ]
    )


def from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def to_datetime(value: Any) -> Any:
    if value is None:
        return None
    # Stored times are UTC; SQLite hands them back without saying so.
    parsed = value if isinstance(value, datetime) else parse_datetime(value)
    return parsed.replace(tzinfo=UTC) if parsed and parsed.tzinfo is None else parsed


def decode(row: Sequence[Any], attempt: int | None) -> tuple[RunRecord, dict[str, StepRecord]]:
    fields = len(RUN_FIELDS)
    (
        run_key,
        pipeline,
        state,
        params,
        queue,
        created,
        expires,
        started,
        finished,
        current,
        stage,
        done,
        total,
        message,
        ref,
        trace,
        cancel,
        owner,
        ancestor,
        pinned,
        cancel_at,
        cancel_by,
        interrupted,
    ) = row[:fields]
    inputs, steps, outputs = (from_json(value) or [] for value in row[fields : fields + 3])
    run = RunRecord(
        id=str(uuid.UUID(str(run_key))),
        pipeline=pipeline,
        state=RunState(state),
        params=from_json(params),
        inputs=[InputRecord(*values) for values in inputs],
        queue=queue,
        created_at=to_datetime(created),
        expires_at=to_datetime(expires),
        started_at=to_datetime(started),
        finished_at=to_datetime(finished),
        current_step=current,
        stage=stage,
        progress_done=done,
        progress_total=total,
        error_message=message,
        error_ref=ref,
        error_traceback=trace,
        cancel_requested=bool(cancel),
        attempt=attempt or 0,
        owner_id=owner,
        ancestor_id=str(uuid.UUID(str(ancestor))) if ancestor else None,
        pinned=bool(pinned),
        cancel_requested_at=to_datetime(cancel_at),
        cancel_requested_by=cancel_by,
        interrupted_step=interrupted,
    )
    by_step: dict[str, list[OutputRecord]] = {}
    for values in outputs:
        by_step.setdefault(values[0], []).append(OutputRecord(*values))
    records = {}
    for values in steps:
        name, position, step_state, step_attempt, result, fingerprint = values[:6]
        error, accepted, step_started, step_finished = values[6:]
        records[name] = StepRecord(
            name=name,
            position=position,
            state=step_state,
            attempt=step_attempt,
            result=json.loads(result) if result is not None else None,
            fingerprint=from_json(fingerprint),
            error=error,
            accepted=bool(accepted),
            started_at=step_started,
            finished_at=step_finished,
            outputs=by_step.get(name, []),
        )
    return run, records


def decode_loaded(value: Any) -> tuple[RunRecord, dict[str, StepRecord]]:
    """Decode what ``gristmill_load()`` returns (PostgreSQL): the run's fields, inputs,
    steps and outputs, then its latest attempt, as one JSON array."""
    fields = from_json(value)
    steps = [
        [
            *step[:4],
            json.dumps(step[4])
            if step[4] is not None and not isinstance(step[4], str)
            else step[4],
            *step[5:],
        ]
        for step in fields[len(RUN_FIELDS) + 1]
    ]
    row = [*fields[: len(RUN_FIELDS) + 1], steps, fields[len(RUN_FIELDS) + 2]]
    return decode(row, fields[-1])

"""The store, on Django's database layer (SQLite or PostgreSQL).

Reads that pages and the engine make once per run go through the ORM. The hot path (create,
claim, save, finish) is raw SQL: a handful of statements per transaction, no model instances.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import OperationalError, connections, transaction

from gristmill.engine.store import (
    Claim,
    Failure,
    InputRecord,
    LogLine,
    NewRun,
    OutputRecord,
    Renewal,
    Report,
    RunRecord,
    StepOutcome,
    StepRecord,
    Store,
)
from gristmill.errors import NotFoundError, StoreUnavailableError
from gristmill.runs import RunState
from gristmill.server import models
from gristmill.server.doorbells import doorbells_for

_FINISHED = (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_uuid(run_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(run_id))
    except ValueError:
        raise NotFoundError(f"no run with id {run_id!r}") from None


class DjangoStore(Store):
    """A :class:`~gristmill.engine.store.Store` on the Django database ``alias``."""

    def __init__(self, alias: str = "default"):
        self.alias = alias
        self.connection = connections[alias]
        self.vendor = self.connection.vendor
        self.supports_skip_locked = self.vendor == "postgresql"
        self._work_bell, self._done_bell = doorbells_for(alias)

    # -- helpers --------------------------------------------------------------------------

    def _id(self, run_id: str) -> Any:
        value = _parse_uuid(run_id)
        return value if self.vendor == "postgresql" else value.hex

    def _dt(self, value: datetime | None) -> Any:
        return connections[self.alias].ops.adapt_datetimefield_value(value)

    def _atomic(self) -> transaction.Atomic:
        return transaction.atomic(using=self.alias)

    def _cursor(self) -> Any:
        return connections[self.alias].cursor()

    def _insert_logs(
        self, cursor: Any, run_key: Any, logs: list[tuple[float, str, str, str]]
    ) -> None:
        if logs:
            cursor.executemany(
                "INSERT INTO gristmill_logline (run_id, at, step, stream, text) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(run_key, at, step, stream, text) for at, step, stream, text in logs],
            )
            logs.clear()

    def _notify(self, cursor: Any, channel: str, payload: str = "") -> None:
        # On PostgreSQL, NOTIFY inside the transaction is delivered exactly when it commits.
        if self.vendor == "postgresql":
            cursor.execute("SELECT pg_notify(%s, %s)", [channel, payload])

    # -- submitting and reading -----------------------------------------------------------

    def create_run(self, run: NewRun) -> None:
        key = self._id(run.id)
        try:
            with self._atomic(), self._cursor() as cursor:
                cursor.execute(
                    "INSERT INTO gristmill_run (id, pipeline, queue, state, params, owner_id, "
                    "ancestor_id, created_at, expires_at, cancel_requested, pinned) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        key,
                        run.pipeline,
                        run.queue,
                        RunState.QUEUED.value,
                        json.dumps(run.params),
                        run.owner_id,
                        self._id(run.ancestor_id) if run.ancestor_id else None,
                        self._dt(_now()),
                        self._dt(run.expires_at),
                        False,
                        False,
                    ],
                )
                if run.inputs:
                    cursor.executemany(
                        "INSERT INTO gristmill_input (run_id, position, name, kind, path, size, "
                        "sha256, media_type, source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [
                            (
                                key,
                                position,
                                i.name,
                                i.kind,
                                i.path,
                                i.size,
                                i.sha256,
                                i.media_type,
                                i.source,
                            )
                            for position, i in enumerate(run.inputs)
                        ],
                    )
                cursor.execute(
                    "INSERT INTO gristmill_unit (run_id, kind, queue, state, attempt, failures, "
                    "max_attempts) VALUES (%s, 'run', %s, 'queued', 0, 0, %s)",
                    [key, run.queue, run.max_attempts],
                )
                self._notify(cursor, "gristmill_work")
        except OperationalError as error:
            raise StoreUnavailableError(f"the run could not be stored: {error}") from error
        if self.vendor != "postgresql":
            self._work_bell.ring()

    def get_run(self, run_id: str) -> RunRecord:
        key = _parse_uuid(run_id)
        try:
            row = models.Run.objects.using(self.alias).get(pk=key)
        except models.Run.DoesNotExist:
            raise NotFoundError(f"no run with id {run_id!r}") from None
        inputs = [
            InputRecord(i.name, i.path, i.size, i.sha256, i.media_type, i.kind, i.source)
            for i in models.Input.objects.using(self.alias).filter(run_id=key).order_by("position")
        ]
        attempt = (
            models.WorkUnit.objects.using(self.alias)
            .filter(run_id=key)
            .order_by("-id")
            .values_list("attempt", flat=True)
            .first()
        )
        return RunRecord(
            id=str(row.id),
            pipeline=row.pipeline,
            state=RunState(row.state),
            params=row.params,
            inputs=inputs,
            queue=row.queue,
            created_at=row.created_at,
            expires_at=row.expires_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            current_step=row.current_step,
            stage=row.stage,
            progress_done=row.progress_done,
            progress_total=row.progress_total,
            error_message=row.error_message,
            error_ref=row.error_ref,
            error_traceback=row.error_traceback,
            cancel_requested=row.cancel_requested,
            attempt=attempt or 0,
            owner_id=row.owner_id,
            ancestor_id=str(row.ancestor_id) if row.ancestor_id else None,
        )

    def get_steps(self, run_id: str) -> dict[str, StepRecord]:
        key = _parse_uuid(run_id)
        outputs: dict[str, list[OutputRecord]] = {}
        for o in models.Output.objects.using(self.alias).filter(run_id=key).order_by("id"):
            outputs.setdefault(o.step, []).append(
                OutputRecord(o.step, o.name, o.path, o.size, o.sha256, o.media_type)
            )
        steps = {}
        for s in models.Step.objects.using(self.alias).filter(run_id=key).order_by("position"):
            steps[s.name] = StepRecord(
                name=s.name,
                position=s.position,
                state=s.state,
                attempt=s.attempt,
                result=json.loads(s.result) if s.result is not None else None,
                fingerprint=s.fingerprint,
                error=s.error,
                accepted=s.accepted,
                started_at=s.started_at,
                finished_at=s.finished_at,
                outputs=outputs.get(s.name, []),
            )
        return steps

    def read_log(self, run_id: str, *, after: int = 0, limit: int = 1000) -> list[LogLine]:
        key = self._id(run_id)
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT id, at, step, stream, text FROM gristmill_logline "
                "WHERE run_id = %s AND id > %s ORDER BY id LIMIT %s",
                [key, int(after), int(limit)],
            )
            return [LogLine(*row) for row in cursor.fetchall()]

    def request_cancel(self, run_id: str) -> bool:
        key = self._id(run_id)
        with self._atomic(), self._cursor() as cursor:
            cursor.execute(
                "UPDATE gristmill_run SET state = %s, finished_at = %s, "
                "error_message = 'cancelled before it started' WHERE id = %s AND state = %s",
                [RunState.CANCELLED.value, self._dt(_now()), key, RunState.QUEUED.value],
            )
            if cursor.rowcount:
                cursor.execute(
                    "UPDATE gristmill_unit SET state = 'done' WHERE run_id = %s "
                    "AND state = 'queued'",
                    [key],
                )
                self._notify(cursor, "gristmill_done", str(run_id))
                cancelled_now = True
            else:
                cursor.execute(
                    "UPDATE gristmill_run SET cancel_requested = %s WHERE id = %s AND state = %s",
                    [True, key, RunState.RUNNING.value],
                )
                if not cursor.rowcount:
                    self.get_run(run_id)  # NotFoundError for an unknown id
                    return False
                cancelled_now = False
        if cancelled_now and self.vendor != "postgresql":
            self._done_bell.ring()
        return True

    def requeue(self, run_id: str, *, reason: str) -> bool:
        key = self._id(run_id)
        with self._atomic(), self._cursor() as cursor:
            cursor.execute(
                "UPDATE gristmill_run SET state = %s, finished_at = NULL, error_message = NULL, "
                "error_ref = NULL, error_traceback = NULL, cancel_requested = %s, "
                "current_step = NULL, stage = NULL, progress_done = NULL, progress_total = NULL "
                "WHERE id = %s AND state IN (%s, %s, %s)",
                [RunState.QUEUED.value, False, key, *(s.value for s in _FINISHED)],
            )
            if not cursor.rowcount:
                self.get_run(run_id)
                return False
            cursor.execute("SELECT queue FROM gristmill_run WHERE id = %s", [key])
            (queue,) = cursor.fetchone()
            # Attempt numbers keep rising over the run's life: they name work directories.
            cursor.execute(
                "INSERT INTO gristmill_unit (run_id, kind, queue, state, attempt, failures, "
                "max_attempts) SELECT %s, 'run', %s, 'queued', attempt, 0, max_attempts "
                "FROM gristmill_unit WHERE run_id = %s ORDER BY id DESC LIMIT 1",
                [key, queue, key],
            )
            self._insert_logs(cursor, key, [(time.time(), "", "system", f"queued again: {reason}")])
            self._notify(cursor, "gristmill_work")
        if self.vendor != "postgresql":
            self._work_bell.ring()
        return True

    def accept_step(self, run_id: str, step: str, fingerprint: dict[str, Any]) -> bool:
        updated = (
            models.Step.objects.using(self.alias)
            .filter(run_id=_parse_uuid(run_id), name=step)
            .update(fingerprint=fingerprint, accepted=True)
        )
        return bool(updated)

    # -- working --------------------------------------------------------------------------

    def claim(
        self,
        worker: str,
        *,
        queues: Sequence[str] | None,
        lease: float,
        limit: int = 1,
        unit_id: int | None = None,
        run_id: str | None = None,
    ) -> list[Claim]:
        queue_sql, queue_args = "", []
        if queues:
            queue_sql = f" AND queue IN ({', '.join(['%s'] * len(queues))})"
            queue_args = list(queues)
        if unit_id is not None:
            pick = "SELECT id FROM gristmill_unit WHERE id = %s AND state = 'queued'"
            pick_args: list[Any] = [unit_id]
        elif run_id is not None:
            pick = (
                "SELECT id FROM gristmill_unit WHERE run_id = %s AND state = 'queued' "
                "ORDER BY id LIMIT 1"
            )
            pick_args = [self._id(run_id)]
        else:
            pick = (
                f"SELECT id FROM gristmill_unit WHERE state = 'queued'{queue_sql} "
                "ORDER BY id LIMIT %s"
            )
            pick_args = [*queue_args, limit]
            # Look before taking the write lock: idle polls then cost a read, not a write.
            with self._cursor() as cursor:
                cursor.execute(
                    f"SELECT 1 FROM gristmill_unit WHERE state = 'queued'{queue_sql} LIMIT 1",
                    queue_args,
                )
                if cursor.fetchone() is None:
                    return []
        if self.supports_skip_locked:
            pick += " FOR UPDATE SKIP LOCKED"
        lease_until = time.time() + lease
        with self._atomic(), self._cursor() as cursor:
            cursor.execute(
                "UPDATE gristmill_unit SET state = 'claimed', attempt = attempt + 1, "
                f"worker = %s, lease_until = %s WHERE id IN ({pick}) "
                "RETURNING id, run_id, attempt, kind",
                [worker, lease_until, *pick_args],
            )
            rows = cursor.fetchall()
            if not rows:
                return []
            keys = [row[1] for row in rows]
            cursor.execute(
                "UPDATE gristmill_run SET state = %s, started_at = COALESCE(started_at, %s) "
                f"WHERE id IN ({', '.join(['%s'] * len(keys))}) AND state = %s",
                [RunState.RUNNING.value, self._dt(_now()), *keys, RunState.QUEUED.value],
            )
        return [
            Claim(unit_id=row[0], run_id=str(uuid.UUID(str(row[1]))), attempt=row[2], kind=row[3])
            for row in rows
        ]

    def _fence(
        self, cursor: Any, claim: Claim, lease_until: float | None, state: str = "claimed"
    ) -> bool:
        cursor.execute(
            "UPDATE gristmill_unit SET lease_until = %s, state = %s "
            "WHERE id = %s AND attempt = %s AND state = 'claimed'",
            [lease_until, state, claim.unit_id, claim.attempt],
        )
        return bool(cursor.rowcount)

    def _write_report(self, cursor: Any, key: Any, report: Report) -> None:
        self._insert_logs(cursor, key, report.logs)
        cursor.execute(
            "UPDATE gristmill_run SET current_step = %s, stage = %s, progress_done = %s, "
            "progress_total = %s WHERE id = %s",
            [report.current_step, report.stage, report.progress_done, report.progress_total, key],
        )

    def _end_run(
        self, cursor: Any, key: Any, run_id: str, state: RunState, failure: Failure | None
    ) -> None:
        cursor.execute(
            "UPDATE gristmill_run SET state = %s, finished_at = %s, current_step = NULL, "
            "stage = NULL, error_message = %s, error_ref = %s, error_traceback = %s, "
            "cancel_requested = %s WHERE id = %s",
            [
                state.value,
                self._dt(_now()),
                failure.message if failure else None,
                failure.ref if failure else None,
                failure.traceback if failure else None,
                False,
                key,
            ],
        )
        self._notify(cursor, "gristmill_done", run_id)

    def save_step(
        self,
        claim: Claim,
        outcome: StepOutcome,
        report: Report,
        *,
        lease: float,
        final: RunState | None = None,
    ) -> bool:
        key = self._id(claim.run_id)
        ending = final is not None
        with self._atomic(), self._cursor() as cursor:
            if not self._fence(
                cursor,
                claim,
                None if ending else time.time() + lease,
                "done" if ending else "claimed",
            ):
                return False
            cursor.execute(
                "INSERT INTO gristmill_step (run_id, name, position, state, attempt, result, "
                "fingerprint, error, accepted, started_at, finished_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (run_id, name) DO UPDATE SET position = excluded.position, "
                "state = excluded.state, attempt = excluded.attempt, result = excluded.result, "
                "fingerprint = excluded.fingerprint, error = excluded.error, "
                "accepted = excluded.accepted, started_at = excluded.started_at, "
                "finished_at = excluded.finished_at",
                [
                    key,
                    outcome.name,
                    outcome.position,
                    outcome.state,
                    claim.attempt,
                    outcome.result_json,
                    json.dumps(outcome.fingerprint) if outcome.fingerprint is not None else None,
                    outcome.error,
                    False,
                    outcome.started_at,
                    outcome.finished_at,
                ],
            )
            cursor.execute(
                "DELETE FROM gristmill_output WHERE run_id = %s AND step = %s", [key, outcome.name]
            )
            if outcome.outputs:
                cursor.executemany(
                    "INSERT INTO gristmill_output (run_id, step, name, path, size, sha256, "
                    "media_type) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        (key, o.step, o.name, o.path, o.size, o.sha256, o.media_type)
                        for o in outcome.outputs
                    ],
                )
            if final is None:
                self._write_report(cursor, key, report)
            else:
                self._insert_logs(cursor, key, report.logs)
                self._end_run(cursor, key, claim.run_id, final, None)
        if ending and self.vendor != "postgresql":
            self._done_bell.ring()
        return True

    def flush(self, claim: Claim, report: Report, *, lease: float) -> Renewal:
        key = self._id(claim.run_id)
        with self._atomic(), self._cursor() as cursor:
            if not self._fence(cursor, claim, time.time() + lease):
                return Renewal(owned=False, cancel_requested=False)
            self._write_report(cursor, key, report)
            cursor.execute("SELECT cancel_requested FROM gristmill_run WHERE id = %s", [key])
            (cancel,) = cursor.fetchone()
        return Renewal(owned=True, cancel_requested=bool(cancel))

    def finish(
        self, claim: Claim, state: RunState, report: Report, failure: Failure | None = None
    ) -> bool:
        key = self._id(claim.run_id)
        with self._atomic(), self._cursor() as cursor:
            if not self._fence(cursor, claim, None, "done"):
                return False
            self._insert_logs(cursor, key, report.logs)
            self._end_run(cursor, key, claim.run_id, state, failure)
        if self.vendor != "postgresql":
            self._done_bell.ring()
        return True

    def release(self, claim: Claim, report: Report) -> bool:
        key = self._id(claim.run_id)
        with self._atomic(), self._cursor() as cursor:
            if not self._fence(cursor, claim, None, "queued"):
                return False
            cursor.execute("UPDATE gristmill_unit SET worker = NULL WHERE id = %s", [claim.unit_id])
            report.logs.append(
                (
                    time.time(),
                    "",
                    "system",
                    f"attempt {claim.attempt} released by a stopping worker",
                )
            )
            self._insert_logs(cursor, key, report.logs)
            cursor.execute(
                "UPDATE gristmill_run SET state = %s, stage = NULL WHERE id = %s AND state = %s",
                [RunState.QUEUED.value, key, RunState.RUNNING.value],
            )
            self._notify(cursor, "gristmill_work")
        if self.vendor != "postgresql":
            self._work_bell.ring()
        return True

    def _lose(self, unit: tuple[Any, ...], reason: str) -> bool:
        unit_id, run_key, attempt, failures, max_attempts = unit
        run_id = str(uuid.UUID(str(run_key)))
        failures += 1
        give_up = failures >= max_attempts
        with self._atomic(), self._cursor() as cursor:
            cursor.execute(
                "UPDATE gristmill_unit SET state = %s, worker = NULL, lease_until = NULL, "
                "failures = %s, last_error = %s WHERE id = %s AND attempt = %s "
                "AND state = 'claimed'",
                ["done" if give_up else "queued", failures, reason, unit_id, attempt],
            )
            if not cursor.rowcount:
                return False
            if give_up:
                message = (
                    f"worker lost ({reason}) on attempt {attempt}; "
                    f"gave up after {failures} lost attempts"
                )
                self._insert_logs(cursor, run_key, [(time.time(), "", "system", message)])
                self._end_run(cursor, run_key, run_id, RunState.FAILED, Failure(message))
            else:
                self._insert_logs(
                    cursor,
                    run_key,
                    [
                        (
                            time.time(),
                            "",
                            "system",
                            f"attempt {attempt} lost: worker lost ({reason}); retrying",
                        )
                    ],
                )
                cursor.execute(
                    "UPDATE gristmill_run SET state = %s, stage = NULL WHERE id = %s",
                    [RunState.QUEUED.value, run_key],
                )
                self._notify(cursor, "gristmill_work")
        if self.vendor != "postgresql":
            (self._done_bell if give_up else self._work_bell).ring()
        return True

    def _lost_units(self, where: str, args: list[Any]) -> list[tuple[Any, ...]]:
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT id, run_id, attempt, failures, max_attempts FROM gristmill_unit "
                f"WHERE state = 'claimed' AND {where}",
                args,
            )
            return list(cursor.fetchall())

    def release_worker(self, worker: str, reason: str) -> int:
        units = self._lost_units("worker = %s", [worker])
        return sum(self._lose(unit, reason) for unit in units)

    def reap(self) -> int:
        units = self._lost_units("lease_until < %s", [time.time()])
        return sum(self._lose(unit, "its lease expired") for unit in units)

    # -- doorbells ------------------------------------------------------------------------

    def ring_work(self) -> None:
        self._work_bell.ring()

    def wait_for_work(self, timeout: float) -> None:
        self._work_bell.wait(timeout)

    def ring_done(self, run_id: str) -> None:
        self._done_bell.ring()

    def wait_for_done(self, timeout: float) -> None:
        self._done_bell.wait(timeout)

    def close(self) -> None:
        self._work_bell.close()
        self._done_bell.close()

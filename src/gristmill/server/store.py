"""The store, on Django's database connections (SQLite or PostgreSQL).

Every operation is raw SQL through :mod:`gristmill.server.sql`: the hot path (submit, claim,
load, save, finish) runs one transaction per operation, which on PostgreSQL is one round trip.
Writes made for a claim are fenced by its attempt number (see :mod:`gristmill.store.base`).
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import OperationalError, connections

from gristmill.errors import NotFoundError, StoreUnavailableError
from gristmill.server.doorbells import doorbells_for
from gristmill.server.rows import (
    LATEST_ATTEMPT,
    UPSERT_STEP,
    decode,
    decode_loaded,
    load_columns,
    to_datetime,
)
from gristmill.server.sql import (
    ClaimSpec,
    Driver,
    Fence,
    Fenced,
    Many,
    PostgresDriver,
    SqliteDriver,
)
from gristmill.states import (
    FINAL_RUN_STATES,
    RunState,
    UnitKind,
    UnitState,
    check_run_end,
    run_states_before,
)
from gristmill.store.base import (
    CANCELLED_MESSAGE,
    NEVER_STARTED_MESSAGE,
    Claim,
    DueRun,
    Failure,
    InputRecord,
    LogLine,
    NewRun,
    NextClaim,
    Renewal,
    Report,
    RunRecord,
    StepOutcome,
    StepRecord,
    Store,
)

# The moves made by a rerun and by expiry, from the one transition table.
_REQUEUEABLE = [s.value for s in run_states_before(RunState.QUEUED, among=FINAL_RUN_STATES)]
_EXPIRABLE = [s.value for s in run_states_before(RunState.EXPIRED)]
_QUEUED, _CLAIMED, _DONE = UnitState.QUEUED.value, UnitState.CLAIMED.value, UnitState.DONE.value


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _now() -> datetime:
    return datetime.now(UTC)


def _is_operational(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached or written (not a bug)."""
    if isinstance(error, OperationalError | sqlite3.OperationalError):
        return True
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(error, psycopg.OperationalError)


def _is_closed(error: BaseException) -> bool:
    if isinstance(error, sqlite3.ProgrammingError):
        return "closed" in str(error)
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(error, psycopg.OperationalError) and "connection is closed" in str(error)


def _queues_sql(queues: Sequence[str] | None) -> str:
    return f" AND queue IN ({', '.join(['%s'] * len(queues))})" if queues else ""


def _parse_uuid(run_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(run_id))
    except ValueError:
        raise NotFoundError(f"no run with id {run_id!r}") from None


class DjangoStore(Store):
    """A :class:`~gristmill.store.base.Store` on the Django database ``alias``."""

    def __init__(self, alias: str = "default"):
        self.alias = alias
        self.connection = connections[alias]
        self.vendor = self.connection.vendor
        self.supports_skip_locked = self.vendor == "postgresql"
        self._work_bell, self._done_bell, self._cancel_bell = doorbells_for(alias)
        self._load = load_columns(self.vendor)
        self.sql: Driver
        if self.vendor == "postgresql":
            self.sql = PostgresDriver(alias)
        else:
            self.sql = SqliteDriver(alias, f"{self.connection.settings_dict['NAME']}.lock")

    # -- helpers --------------------------------------------------------------------------

    def _id(self, run_id: str) -> Any:
        value = _parse_uuid(run_id)
        return value if self.vendor == "postgresql" else value.hex

    def _dt(self, value: datetime | None) -> Any:
        if value is None or self.vendor == "postgresql":
            return value
        # What Django stores on SQLite (naive UTC as text), without its per-call overhead.
        return str(value.astimezone(UTC).replace(tzinfo=None))

    def _guard(self, operation: Callable[[], Any], *, again: bool = True) -> Any:
        """Run a driver operation; a lost connection becomes StoreUnavailableError and is
        dropped, so that the next call reconnects."""
        try:
            return operation()
        except Fenced:
            raise
        except Exception as error:
            if again and _is_closed(error):
                # Our cached connection was closed under us (e.g. at the end of a web
                # request) before anything was sent: reconnect and try once more.
                self.sql.reset()
                return self._guard(operation, again=False)
            if _is_operational(error):
                self.sql.reset()
                raise StoreUnavailableError(f"the database is unavailable: {error}") from error
            raise

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._guard(lambda: self.sql.fetch(sql, params))  # type: ignore[no-any-return]

    def _write(self, *parts: Any, then_claim: NextClaim | None = None) -> bool:
        """Run ``parts`` in one transaction; False (nothing written) if a fence failed.

        With ``then_claim``, the transaction ends by claiming the next unit(s) for that worker,
        which are added to ``then_claim.claims``.
        """
        spec = None
        if then_claim is not None:
            spec = self._claim_spec(then_claim.worker, then_claim.queues, then_claim.lease)
        try:
            rows = self._guard(lambda: self.sql.write(*parts, claim=spec))
        except Fenced:
            return False
        if rows:
            assert then_claim is not None
            then_claim.claims.extend(self._claims(rows))
        return True

    def _ring(self, bell: str) -> None:
        # PostgreSQL rings with NOTIFY inside the transaction, delivered when it commits.
        if self.vendor != "postgresql":
            bells = {"work": self._work_bell, "done": self._done_bell}
            bells.get(bell, self._cancel_bell).ring()

    def _notify(self, channel: str, payload: str = "") -> list[Any]:
        if self.vendor == "postgresql":
            return [("SELECT pg_notify(%s, %s)", [channel, payload])]
        return []

    def _logs(self, key: Any, logs: list[tuple[float, str, str, str]]) -> Many:
        rows = [(key, at, step, stream, text) for at, step, stream, text in logs]
        logs.clear()
        return Many(
            "INSERT INTO gristmill_logline (run_id, at, step, stream, text) "
            "VALUES (%s, %s, %s, %s, %s)",
            rows,
        )

    def _report(self, key: Any, report: Report) -> list[Any]:
        return [
            self._logs(key, report.logs),
            (
                "UPDATE gristmill_run SET current_step = %s, stage = %s, progress_done = %s, "
                "progress_total = %s WHERE id = %s",
                [
                    report.current_step,
                    report.stage,
                    report.progress_done,
                    report.progress_total,
                    key,
                ],
            ),
        ]

    def _end(self, key: Any, run_id: str, state: RunState, failure: Failure | None) -> list[Any]:
        # A cancel requested before this write commits wins over whatever the worker saw: the
        # row decides, in this transaction (a request committed meanwhile is re-read by
        # PostgreSQL's row lock, and SQLite writers take turns). So a 202 never ends otherwise.
        message = failure.message if failure else None
        step = failure.step if failure else None
        cancelled = state == RunState.CANCELLED
        return [
            (
                "UPDATE gristmill_run SET "
                "state = CASE WHEN cancel_requested THEN %s ELSE %s END, "
                "error_message = CASE WHEN cancel_requested THEN %s ELSE %s END, "
                "error_ref = CASE WHEN cancel_requested THEN NULL ELSE %s END, "
                "error_traceback = CASE WHEN cancel_requested THEN NULL ELSE %s END, "
                "interrupted_step = CASE WHEN cancel_requested THEN %s ELSE %s END, "
                "finished_at = %s, current_step = NULL, stage = NULL, progress_done = NULL, "
                "progress_total = NULL WHERE id = %s",
                [
                    RunState.CANCELLED.value,
                    state.value,
                    message if cancelled and message else CANCELLED_MESSAGE,
                    message,
                    failure.ref if failure else None,
                    failure.traceback if failure else None,
                    step,
                    step if cancelled else None,
                    self._dt(_now()),
                    key,
                ],
            ),
            *self._notify("gristmill_done", run_id),
        ]

    def _move_to_running(self, key: Any) -> list[Any]:
        return [
            (
                "UPDATE gristmill_run SET state = %s, started_at = %s WHERE id = %s",
                [RunState.RUNNING.value, self._dt(_now()), key],
            )
        ]

    def _fence(
        self, claim: Claim, lease_until: float | None, state: UnitState = UnitState.CLAIMED
    ) -> Fence:
        return Fence(
            "UPDATE gristmill_unit SET lease_until = %s, state = %s "
            "WHERE id = %s AND attempt = %s AND state = %s",
            [lease_until, state.value, claim.unit_id, claim.attempt, _CLAIMED],
        )

    def _exists(self, run_id: str) -> None:
        if not self._fetch("SELECT 1 FROM gristmill_run WHERE id = %s", [self._id(run_id)]):
            raise NotFoundError(f"no run with id {run_id!r}")

    # -- submitting and reading -----------------------------------------------------------

    def create_run(self, run: NewRun) -> Claim | None:
        key = self._id(run.id)
        held = run.claimed_by is not None
        try:
            self.sql.write(
                (
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
                ),
                Many(
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
                ),
                (
                    "INSERT INTO gristmill_unit (run_id, kind, queue, state, attempt, failures, "
                    "max_attempts, worker, lease_until) VALUES (%s, %s, %s, %s, %s, 0, %s, "
                    "%s, %s)",
                    [
                        key,
                        UnitKind.RUN.value,
                        run.queue,
                        _CLAIMED if held else _QUEUED,
                        1 if held else 0,
                        run.max_attempts,
                        run.claimed_by,
                        time.time() + run.lease if held else None,
                    ],
                ),
                *(self._move_to_running(key) if held else self._notify("gristmill_work")),
            )
        except Exception as error:
            self.sql.reset()
            if _is_operational(error):
                raise StoreUnavailableError(f"the run could not be stored: {error}") from error
            raise
        if not held:
            self._ring("work")
            return None
        unit = self._fetch("SELECT id FROM gristmill_unit WHERE run_id = %s", [key])
        return Claim(unit_id=unit[0][0], run_id=run.id, attempt=1)

    def get_run_and_steps(self, run_id: str) -> tuple[RunRecord, dict[str, StepRecord]]:
        if self.vendor == "postgresql":
            rows = self._fetch("SELECT gristmill_load(%s)", [self._id(run_id)])
            if not rows or rows[0][0] is None:
                raise NotFoundError(f"no run with id {run_id!r}")
            return decode_loaded(rows[0][0])
        rows = self._fetch(
            f"SELECT {self._load}, {LATEST_ATTEMPT} FROM gristmill_run r WHERE r.id = %s",
            [self._id(run_id)],
        )
        if not rows:
            raise NotFoundError(f"no run with id {run_id!r}")
        return decode(rows[0][:-1], rows[0][-1])

    def get_run(self, run_id: str) -> RunRecord:
        return self.get_run_and_steps(run_id)[0]

    def get_steps(self, run_id: str) -> dict[str, StepRecord]:
        return self.get_run_and_steps(run_id)[1]

    def load(self, claim: Claim) -> tuple[RunRecord, dict[str, StepRecord]]:
        if claim.preload is not None:
            return claim.preload  # type: ignore[no-any-return]
        rows = self._fetch(
            f"SELECT {self._load} FROM gristmill_run r WHERE r.id = %s", [self._id(claim.run_id)]
        )
        if not rows:
            raise NotFoundError(f"no run with id {claim.run_id!r}")
        return decode(rows[0], claim.attempt)

    def read_log(self, run_id: str, *, after: int = 0, limit: int = 1000) -> list[LogLine]:
        rows = self._fetch(
            "SELECT id, at, step, stream, text FROM gristmill_logline "
            "WHERE run_id = %s AND id > %s ORDER BY id LIMIT %s",
            # Clamped to what a 64-bit id column can compare with.
            [self._id(run_id), max(0, min(int(after), 2**63 - 1)), max(0, min(int(limit), 10_000))],
        )
        return [LogLine(*row) for row in rows]

    def request_cancel(self, run_id: str, *, by: str | None = None) -> bool:
        key = self._id(run_id)
        # A run can move between queued and running while we ask (claimed, or handed back by
        # a stopping worker), so each state is tried in turn until one takes or it has ended.
        for _ in range(5):
            now = self._dt(_now())
            if self._write(
                Fence(
                    "UPDATE gristmill_run SET state = %s, finished_at = %s, error_message = %s, "
                    "cancel_requested = %s, cancel_requested_at = %s, cancel_requested_by = %s "
                    "WHERE id = %s AND state = %s",
                    [
                        RunState.CANCELLED.value,
                        now,
                        NEVER_STARTED_MESSAGE,
                        True,
                        now,
                        by,
                        key,
                        RunState.QUEUED.value,
                    ],
                ),
                (
                    "UPDATE gristmill_unit SET state = %s WHERE run_id = %s AND state = %s",
                    [_DONE, key, _QUEUED],
                ),
                *self._notify("gristmill_done", str(run_id)),
            ):
                self._ring("done")
                return True
            if self._write(
                Fence(
                    "UPDATE gristmill_run SET cancel_requested = %s, "
                    "cancel_requested_at = COALESCE(cancel_requested_at, %s), "
                    "cancel_requested_by = CASE WHEN cancel_requested_at IS NULL THEN %s "
                    "ELSE cancel_requested_by END WHERE id = %s AND state = %s",
                    [True, now, by, key, RunState.RUNNING.value],
                ),
                *self._notify("gristmill_cancel", str(run_id)),
            ):
                self._ring("cancel")
                return True
            rows = self._fetch("SELECT state FROM gristmill_run WHERE id = %s", [key])
            if not rows:
                raise NotFoundError(f"no run with id {run_id!r}")
            if RunState(rows[0][0]).is_terminal:
                return False
        raise StoreUnavailableError("the run kept changing state; try cancelling it again")

    def cancel_requested(self, claim: Claim) -> bool:
        rows = self._fetch(
            "SELECT cancel_requested FROM gristmill_run WHERE id = %s", [self._id(claim.run_id)]
        )
        return bool(rows and rows[0][0])

    def requeue(self, run_id: str, *, reason: str) -> bool:
        key = self._id(run_id)
        done = self._write(
            Fence(
                "UPDATE gristmill_run SET state = %s, finished_at = NULL, error_message = NULL, "
                "error_ref = NULL, error_traceback = NULL, cancel_requested = %s, "
                "cancel_requested_at = NULL, cancel_requested_by = NULL, "
                "interrupted_step = NULL, current_step = NULL, stage = NULL, "
                "progress_done = NULL, progress_total = NULL "
                f"WHERE id = %s AND state IN ({_placeholders(_REQUEUEABLE)})",
                [RunState.QUEUED.value, False, key, *_REQUEUEABLE],
            ),
            # Attempt numbers keep rising over the run's life: they name work directories.
            (
                "INSERT INTO gristmill_unit (run_id, kind, queue, state, attempt, failures, "
                "max_attempts) SELECT r.id, %s, r.queue, %s, u.attempt, 0, u.max_attempts "
                "FROM gristmill_run r JOIN gristmill_unit u ON u.run_id = r.id WHERE r.id = %s "
                "ORDER BY u.id DESC LIMIT 1",
                [UnitKind.RUN.value, _QUEUED, key],
            ),
            self._logs(key, [(time.time(), "", "system", f"queued again: {reason}")]),
            *self._notify("gristmill_work"),
        )
        if not done:
            self._exists(run_id)
            return False
        self._ring("work")
        return True

    def expire(self, run_id: str, *, reason: str) -> bool:
        key = self._id(run_id)
        done = self._write(
            Fence(
                "UPDATE gristmill_run SET state = %s, error_message = %s, error_ref = NULL, "
                "error_traceback = NULL, current_step = NULL, stage = NULL, "
                "progress_done = NULL, progress_total = NULL, expires_at = %s "
                f"WHERE id = %s AND state IN ({_placeholders(_EXPIRABLE)})",
                [RunState.EXPIRED.value, reason, self._dt(_now()), key, *_EXPIRABLE],
            ),
            *(
                (f"DELETE FROM {table} WHERE run_id = %s", [key])
                for table in (
                    "gristmill_output",
                    "gristmill_step",
                    "gristmill_logline",
                    "gristmill_input",
                    "gristmill_unit",
                )
            ),
        )
        if not done:
            self._exists(run_id)
        return done

    def set_pinned(self, run_id: str, pinned: bool) -> bool:
        key = self._id(run_id)
        done = self._write(
            Fence(
                "UPDATE gristmill_run SET pinned = %s WHERE id = %s AND state <> %s",
                [pinned, key, RunState.EXPIRED.value],
            )
        )
        if not done:
            self._exists(run_id)
        return done

    def due_for_expiry(self, now: datetime, *, limit: int) -> list[DueRun]:
        rows = self._fetch(
            "SELECT id, created_at, expires_at FROM gristmill_run WHERE expires_at <= %s "
            f"AND state IN ({_placeholders(_EXPIRABLE)}) AND NOT pinned ORDER BY expires_at "
            "LIMIT %s",
            [self._dt(now), *_EXPIRABLE, limit],
        )
        return [
            DueRun(str(uuid.UUID(str(key))), to_datetime(created), to_datetime(expires))
            for key, created, expires in rows
        ]

    def unwiped(self, *, limit: int) -> list[str]:
        rows = self._fetch(
            "SELECT id FROM gristmill_run WHERE state = %s AND NOT wiped "
            "ORDER BY expires_at LIMIT %s",
            [RunState.EXPIRED.value, limit],
        )
        return [str(uuid.UUID(str(key))) for (key,) in rows]

    def mark_wiped(self, run_id: str) -> None:
        self._write(("UPDATE gristmill_run SET wiped = %s WHERE id = %s", [True, self._id(run_id)]))

    def accept_step(self, run_id: str, step: str, fingerprint: dict[str, Any]) -> bool:
        return self._write(
            Fence(
                "UPDATE gristmill_step SET fingerprint = %s, accepted = %s "
                "WHERE run_id = %s AND name = %s",
                [json.dumps(fingerprint), True, self._id(run_id), step],
            )
        )

    # -- working --------------------------------------------------------------------------

    def _claim_spec(
        self,
        worker: str,
        queues: Sequence[str] | None,
        lease: float,
        *,
        limit: int = 1,
        unit_id: int | None = None,
        run_id: str | None = None,
    ) -> ClaimSpec:
        if unit_id is not None:
            pick = "SELECT id FROM gristmill_unit WHERE id = %s AND state = %s"
            pick_args: list[Any] = [unit_id, _QUEUED]
        elif run_id is not None:
            pick = (
                "SELECT id FROM gristmill_unit WHERE run_id = %s AND state = %s ORDER BY id LIMIT 1"
            )
            pick_args = [self._id(run_id), _QUEUED]
        else:
            pick = (
                f"SELECT id FROM gristmill_unit WHERE state = %s{_queues_sql(queues)} "
                "ORDER BY id LIMIT %s"
            )
            pick_args = [_QUEUED, *(queues or ()), limit]
        if self.supports_skip_locked:
            pick += " FOR UPDATE SKIP LOCKED"
        update = (
            "UPDATE gristmill_unit SET state = %s, attempt = attempt + 1, "
            f"worker = %s, lease_until = %s WHERE id IN ({pick}) "
            "RETURNING id, run_id, attempt, kind",
            [_CLAIMED, worker, time.time() + lease, *pick_args],
        )
        move = (
            "UPDATE gristmill_run SET state = %s, started_at = COALESCE(started_at, %s) "
            "WHERE state = %s AND id IN (%s)",
            [RunState.RUNNING.value, self._dt(_now()), RunState.QUEUED.value],
        )
        function = None
        if self.vendor == "postgresql" and unit_id is None and run_id is None:
            function = [worker, list(queues) if queues else None, update[1][2], limit, _now()]
        return ClaimSpec(update, move, self._load, function)

    def _preload(self, row: Sequence[Any]) -> tuple[RunRecord, dict[str, StepRecord]] | None:
        if len(row) == 5:  # gristmill_claim() with gristmill_load()
            if row[4] is None:
                return None  # not loaded with the claim: the runner loads it
            run, steps = decode_loaded(row[4])
            run.attempt = row[2]
            return run, steps
        return decode(row[4:], row[2]) if len(row) > 4 else None

    def _claims(self, rows: Sequence[Sequence[Any]]) -> list[Claim]:
        return [
            Claim(
                unit_id=row[0],
                run_id=str(uuid.UUID(str(row[1]))),
                attempt=row[2],
                kind=row[3],
                preload=self._preload(row),
            )
            for row in rows
        ]

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
        if (
            unit_id is None
            and run_id is None
            and self.vendor != "postgresql"
            and not self._fetch(
                f"SELECT 1 FROM gristmill_unit WHERE state = %s{_queues_sql(queues)} LIMIT 1",
                [_QUEUED, *(queues or ())],
            )
        ):
            return []  # on SQLite, look before taking the write lock: an idle poll is a read
        spec = self._claim_spec(worker, queues, lease, limit=limit, unit_id=unit_id, run_id=run_id)
        return self._claims(self._guard(lambda: self.sql.claim(spec)))

    def save_step(
        self,
        claim: Claim,
        outcome: StepOutcome,
        report: Report,
        *,
        lease: float,
        final: RunState | None = None,
        then_claim: NextClaim | None = None,
    ) -> bool:
        if final is not None:
            check_run_end(final)
        key = self._id(claim.run_id)
        ending = final is not None
        parts: list[Any] = [
            self._fence(
                claim,
                None if ending else time.time() + lease,
                UnitState.DONE if ending else UnitState.CLAIMED,
            ),
            (
                UPSERT_STEP,
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
            ),
        ]
        if outcome.replaces_outputs or outcome.outputs:
            parts.append(
                (
                    "DELETE FROM gristmill_output WHERE run_id = %s AND step = %s",
                    [key, outcome.name],
                )
            )
            parts.append(
                Many(
                    "INSERT INTO gristmill_output (run_id, step, name, path, size, sha256, "
                    "media_type) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        (key, o.step, o.name, o.path, o.size, o.sha256, o.media_type)
                        for o in outcome.outputs
                    ],
                )
            )
        if final is None:
            parts += self._report(key, report)
        else:
            parts += [self._logs(key, report.logs), *self._end(key, claim.run_id, final, None)]
        if not self._write(*parts, then_claim=then_claim):
            return False
        if ending:
            self._ring("done")
        return True

    def save_inputs(
        self, claim: Claim, inputs: Mapping[int, InputRecord], report: Report, *, lease: float
    ) -> bool:
        key = self._id(claim.run_id)
        return self._write(
            self._fence(claim, time.time() + lease),
            *(
                (
                    "UPDATE gristmill_input SET name = %s, path = %s, size = %s, sha256 = %s, "
                    "media_type = %s, source = %s WHERE run_id = %s AND position = %s",
                    [i.name, i.path, i.size, i.sha256, i.media_type, i.source, key, position],
                )
                for position, i in inputs.items()
            ),
            *self._report(key, report),
        )

    def flush(self, claim: Claim, report: Report, *, lease: float) -> Renewal:
        key = self._id(claim.run_id)
        if not self._write(self._fence(claim, time.time() + lease), *self._report(key, report)):
            return Renewal(owned=False, cancel_requested=False)
        rows = self._fetch("SELECT cancel_requested FROM gristmill_run WHERE id = %s", [key])
        return Renewal(owned=True, cancel_requested=bool(rows and rows[0][0]))

    def finish(
        self,
        claim: Claim,
        state: RunState,
        report: Report,
        failure: Failure | None = None,
        *,
        then_claim: NextClaim | None = None,
    ) -> bool:
        check_run_end(state)
        key = self._id(claim.run_id)
        if not self._write(
            self._fence(claim, None, UnitState.DONE),
            self._logs(key, report.logs),
            *self._end(key, claim.run_id, state, failure),
            then_claim=then_claim,
        ):
            return False
        self._ring("done")
        return True

    def release(self, claim: Claim, report: Report) -> bool:
        key = self._id(claim.run_id)
        report.logs.append(
            (time.time(), "", "system", f"attempt {claim.attempt} released by a stopping worker")
        )
        if not self._write(
            Fence(
                "UPDATE gristmill_unit SET lease_until = NULL, state = %s, worker = NULL "
                "WHERE id = %s AND attempt = %s AND state = %s",
                [_QUEUED, claim.unit_id, claim.attempt, _CLAIMED],
            ),
            self._logs(key, report.logs),
            (
                "UPDATE gristmill_run SET state = %s, stage = NULL WHERE id = %s AND state = %s",
                [RunState.QUEUED.value, key, RunState.RUNNING.value],
            ),
            *self._notify("gristmill_work"),
        ):
            return False
        self._ring("work")
        return True

    def _lose(self, unit: Sequence[Any], reason: str) -> bool:
        unit_id, run_key, attempt, failures, max_attempts = unit
        run_id = str(uuid.UUID(str(run_key)))
        failures += 1
        give_up = failures >= max_attempts
        fence = Fence(
            "UPDATE gristmill_unit SET state = %s, worker = NULL, lease_until = NULL, "
            "failures = %s, last_error = %s WHERE id = %s AND attempt = %s AND state = %s",
            [_DONE if give_up else _QUEUED, failures, reason, unit_id, attempt, _CLAIMED],
        )
        if give_up:
            message = (
                f"worker lost ({reason}) on attempt {attempt}; "
                f"gave up after {failures} lost attempts"
            )
            parts = [
                self._logs(run_key, [(time.time(), "", "system", message)]),
                *self._end(run_key, run_id, RunState.FAILED, Failure(message)),
            ]
        else:
            note = f"attempt {attempt} lost: worker lost ({reason}); retrying"
            parts = [
                self._logs(run_key, [(time.time(), "", "system", note)]),
                (
                    "UPDATE gristmill_run SET state = %s, stage = NULL WHERE id = %s",
                    [RunState.QUEUED.value, run_key],
                ),
                *self._notify("gristmill_work"),
            ]
        if not self._write(fence, *parts):
            return False
        self._ring("done" if give_up else "work")
        return True

    def _claimed_units(self, where: str, args: list[Any]) -> list[tuple[Any, ...]]:
        return self._fetch(
            "SELECT id, run_id, attempt, failures, max_attempts "
            f"FROM gristmill_unit WHERE state = %s AND {where}",
            [_CLAIMED, *args],
        )

    def release_worker(self, worker: str, reason: str) -> int:
        units = self._claimed_units("worker = %s", [worker])
        return sum(self._lose(unit, reason) for unit in units)

    def held_by(self, worker: str) -> list[Claim]:
        rows = self._fetch(
            "SELECT id, run_id, attempt, kind FROM gristmill_unit "
            "WHERE state = %s AND worker = %s ORDER BY id",
            [_CLAIMED, worker],
        )
        return self._claims(rows)

    def reap(self) -> int:
        units = self._claimed_units("lease_until < %s", [time.time()])
        return sum(self._lose(unit, "its lease expired") for unit in units)

    def ping(self) -> None:
        self._fetch("SELECT 1")

    supports_heartbeats = True

    def beat(self, name: str, workers: int, started_at: float) -> None:
        now = time.time()
        self._write(
            (
                "INSERT INTO gristmill_supervisor (name, workers, started_at, beat_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
                "workers = excluded.workers, beat_at = excluded.beat_at",
                [name, workers, started_at, now],
            ),
            ("DELETE FROM gristmill_supervisor WHERE beat_at < %s", [now - 3600]),
        )

    def sign_off(self, name: str) -> None:
        self._write(("DELETE FROM gristmill_supervisor WHERE name = %s", [name]))

    def enable_worker_mode(self) -> None:
        # A worker's claims, heartbeats and step results need not wait for PostgreSQL's WAL
        # flush: if the database server crashes, the last few are lost and the work is redone
        # (at least once). Submissions, made by other processes, stay synchronous: an accepted
        # run is never lost.
        if self.vendor == "postgresql":
            self.sql.session_setup = ("SET synchronous_commit TO off",)
            self.sql.reset()

    # -- doorbells ------------------------------------------------------------------------

    def ring_work(self) -> None:
        if self.vendor == "postgresql":
            self._write(*self._notify("gristmill_work"))
        else:
            self._work_bell.ring()

    def wait_for_work(self, timeout: float) -> None:
        self._work_bell.wait(timeout)

    def wait_for_cancel(self, timeout: float) -> bool:
        return self._cancel_bell.wait(timeout)

    def ring_done(self, run_id: str) -> None:
        if self.vendor == "postgresql":
            self._write(*self._notify("gristmill_done", run_id))
        else:
            self._done_bell.ring()

    def wait_for_done(self, timeout: float) -> None:
        self._done_bell.wait(timeout)

    def end_thread(self) -> None:
        self.sql.reset()

    def close(self) -> None:
        self._work_bell.close()
        self._done_bell.close()
        self._cancel_bell.close()

    def before_fork(self) -> None:
        # A forked child would share this thread's connections (their sockets) with us.
        connections.close_all()

"""The SQL store: the policy of claims, leases, fences, finishing, requeueing, expiry and
reaping, written once for every database.

Each operation is one transaction (on PostgreSQL, one round trip) of statements named in
``queries.sql``; a :class:`~gristmill.store.sql.dialect.Dialect` runs them. Every write made for
a claim is fenced by its attempt number (see :mod:`gristmill.store.base`): if the unit was taken
over, the transaction writes nothing and the operation returns False. State conditions come
from the tables of :mod:`gristmill.states`, and a move they forbid raises
:class:`~gristmill.errors.TransitionError`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gristmill.errors import NotFoundError, StoreUnavailableError
from gristmill.states import (
    EXPIRABLE_RUN_STATES,
    RERUNNABLE_RUN_STATES,
    RunState,
    UnitKind,
    UnitState,
    check_run_end,
)
from gristmill.store.base import QuotaExceededError
from gristmill.store.records import (
    CANCELLED_MESSAGE,
    NEVER_STARTED_MESSAGE,
    SOURCE_KINDS,
    STOPPING,
    Claim,
    DueRun,
    Failure,
    InputRecord,
    LogLine,
    NewRun,
    NextClaim,
    QueuedUnit,
    QuotaUsage,
    Renewal,
    Report,
    RunRecord,
    StepEnd,
    StepOutcome,
    StepRecord,
)
from gristmill.store.sql.columns import decode, run_id_of, to_datetime
from gristmill.store.sql.connection import SqlConnection
from gristmill.store.sql.dialect import ClaimSpec, Fence, Fenced, Many
from gristmill.store.sql.queries import QUERIES as Q

_QUEUED_RUN = RunState.QUEUED.value
_QUEUED, _CLAIMED, _DONE = UnitState.QUEUED.value, UnitState.CLAIMED.value, UnitState.DONE.value
_RUN_KIND = UnitKind.RUN.value
_RUNNING = RunState.RUNNING.value


def _states(query: str, states: Sequence[RunState]) -> tuple[str, list[str]]:
    """``query`` with its ``{states}`` slot filled for ``states``, and their values."""
    return query.format(states=", ".join(["%s"] * len(states))), [s.value for s in states]


# Which runs a rerun and expiry may move, from the one transition table.
_REQUEUE, _REQUEUEABLE = _states(Q["requeue_run"], RERUNNABLE_RUN_STATES)
_EXPIRE, _EXPIRABLE = _states(Q["expire_run"], EXPIRABLE_RUN_STATES)
_DUE, _ = _states(Q["due_for_expiry"], EXPIRABLE_RUN_STATES)
_RUN_TABLES = (
    "gristmill_output",
    "gristmill_step",
    "gristmill_logline",
    "gristmill_input",
    "gristmill_finding",
    "gristmill_batch",
    "gristmill_map",
)
_DELETE_ROWS = [Q["delete_run_rows"].format(table=t) for t in (*_RUN_TABLES, "gristmill_unit")]


def _now() -> datetime:
    return datetime.now(UTC)


def _queues(query: str, queues: Sequence[str] | None) -> str:
    return query.format(
        queues=f" AND queue IN ({', '.join(['%s'] * len(queues))})" if queues else ""
    )


class SqlPolicy(SqlConnection):
    """The policy of the SQL store (its map steps are added by
    :class:`~gristmill.store.sql.maps.SqlStore`)."""

    fair: bool = True
    """Claims take units by priority, then by turns across submitters; off: by priority
    only (for measuring what fairness costs)."""

    # -- helpers --------------------------------------------------------------------------

    def _write(self, *parts: Any, then_claim: NextClaim | None = None, queues: Any = None) -> bool:
        """Run ``parts`` in one transaction; False (nothing written) if a fence failed.

        With ``then_claim``, the transaction ends by claiming the next unit(s) for that worker,
        which are added to ``then_claim.claims``. With ``queues`` (a run key), the transaction
        queued units of that run: once it has committed, the bell hears of them (see
        :meth:`_queued`).
        """
        spec = self._next_spec(then_claim)
        read = self._queued_read(queues)
        try:
            rows = self._guard(lambda: self.sql.write(*parts, claim=spec, read=read))
        except Fenced:
            return False
        if queues is not None:
            self._queued(rows)
            return True
        if rows:
            assert then_claim is not None
            then_claim.claims.extend(self._claims(rows))
        return True

    def _next_spec(self, then_claim: NextClaim | None) -> ClaimSpec | None:
        """The claim that ends a write with ``then_claim`` (None without)."""
        if then_claim is None:
            return None
        return self._claim_spec(
            then_claim.worker, then_claim.queues, then_claim.lease, limit=then_claim.limit
        )

    def _logs(self, key: Any, logs: list[tuple[float, str, str, str]]) -> Many:
        rows = [(key, at, step, stream, text) for at, step, stream, text in logs]
        logs.clear()
        return Many(Q["add_log_line"], rows)

    def _report(self, key: Any, report: Report) -> list[Any]:
        if not report.status:
            return [self._logs(key, report.logs)]
        progress = [report.current_step, report.stage, report.progress_done]
        return [
            self._logs(key, report.logs),
            (Q["report_progress"], [*progress, report.progress_total, key]),
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
                Q["end_run"],
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
            # A map step's batches still queued end with their run.
            (Q["end_queued_map_units"], [_DONE, key, _QUEUED, key]),
            *self._notify("gristmill_done", run_id),
        ]

    def _fence(
        self, claim: Claim, lease_until: float | None, state: UnitState = UnitState.CLAIMED
    ) -> Fence:
        params = [lease_until, state.value, claim.unit_id, claim.attempt, _CLAIMED]
        return Fence(Q["fence_unit"], params)

    def _queued_read(self, key: Any) -> tuple[str, list[Any]] | None:
        """The query that ends a transaction queueing units of the run ``key``, when the bell
        must hear which units they are (read in the same round trip)."""
        if key is None or self.bell is None:
            return None
        return Q["queued_units_of_run"], [key, _QUEUED]

    def _queued(self, rows: Sequence[Sequence[Any]]) -> None:
        """After a commit that queued units: ring the work doorbell, or tell the store's
        :attr:`bell` which units they are (``rows`` of :meth:`_queued_read`)."""
        if self.bell is None:
            self._ring("work")
        else:
            self.announce([QueuedUnit(unit_id, queue) for unit_id, queue in rows])

    def _exists(self, run_id: str) -> None:
        if not self._fetch(Q["run_exists"], [self._id(run_id)]):
            raise NotFoundError(f"no run with id {run_id!r}")

    # -- submitting and reading -----------------------------------------------------------

    def _create_first(self, run: NewRun, row: list[Any]) -> list[Any]:
        """The parts that insert the first run of a submission: a fence checking the
        submitter's quota when ``run.quota`` is set (so the check and the insert are one
        statement of one transaction; on PostgreSQL an advisory lock on the submitter, held to
        the commit, keeps two submissions of one submitter from both passing the check)."""
        limits = run.quota
        if limits is None or run.submitter is None:
            return [(Q["create_run"], row)]
        checks: list[str] = []
        params: list[Any] = []
        who = run.submitter
        live = [RunState.QUEUED.value, RunState.RUNNING.value]
        expired = RunState.EXPIRED.value
        if limits.concurrent is not None:
            checks.append(Q["quota_concurrent"])
            params += [who, *live, limits.runs, limits.concurrent]
        if limits.per_day is not None:
            since = self._dt(_now() - timedelta(days=1))
            checks.append(Q["quota_per_day"])
            params += [who, since, limits.runs, limits.per_day]
        if limits.storage_bytes is not None:
            checks.append(Q["quota_storage"])
            params += [who, expired, who, expired, limits.new_bytes, limits.storage_bytes]
        if not checks:
            return [(Q["create_run"], row)]
        query = Q["create_run_within_quota"].format(checks=" AND ".join(checks))
        parts: list[Any] = []
        if self.sql.supports_advisory_locks:
            parts.append(("SELECT pg_advisory_xact_lock(hashtext(%s))", [who]))
        parts.append(Fence(query, [*row, *params]))
        return parts

    def quota_usage(self, submitter: str) -> QuotaUsage:
        since = _now() - timedelta(days=1)
        live = [RunState.QUEUED.value, RunState.RUNNING.value]
        expired = RunState.EXPIRED.value
        day = self._dt(since)
        rows = self._fetch(
            Q["quota_usage"],
            [
                *[submitter, *live],
                *[submitter, day],
                *[submitter, expired, submitter, expired],
                *[submitter, day],
                *[submitter, expired],
            ],
        )
        concurrent, today, stored, oldest, expiring = rows[0]
        return QuotaUsage(
            concurrent=int(concurrent),
            runs_today=int(today),
            storage_bytes=int(stored),
            oldest_today=to_datetime(oldest),
            next_expiry=to_datetime(expiring),
        )

    def create_run(self, run: NewRun) -> Claim | None:
        key = self._id(run.id)
        held = run.claimed_by is not None
        inputs = [
            (key, n, i.name, i.kind, i.path, i.size, i.sha256, i.media_type, i.source)
            for n, i in enumerate(run.inputs)
        ]
        lease_until = time.time() + run.lease if held else None
        unit = [key, _RUN_KIND, run.queue, _CLAIMED if held else _QUEUED, 1 if held else 0]
        started = [(Q["start_run"], [RunState.RUNNING.value, self._dt(_now()), key])]
        read = None if held else self._queued_read(key)
        row = [
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
            run.submitter,
            run.priority,
        ]
        try:
            queued = self.sql.write(
                *self._create_first(run, row),
                Many(Q["create_input"], inputs),
                (
                    Q["create_unit"],
                    [*unit, run.max_attempts, run.claimed_by, lease_until, key, key, 0],
                ),
                *(started if held else self._notify("gristmill_work")),
                read=read,
            )
        except Fenced:
            raise QuotaExceededError(f"the run of {run.submitter} would pass a quota") from None
        except Exception as error:
            self.sql.reset()
            if self.source.is_unavailable(error):
                raise StoreUnavailableError(f"the run could not be stored: {error}") from error
            raise
        if not held:
            self._queued(queued)
            return None
        units = self._fetch(Q["unit_of_run"], [key])
        return Claim(unit_id=units[0][0], run_id=run.id, attempt=1)

    def create_runs(self, runs: Sequence[NewRun]) -> None:
        if any(run.claimed_by is not None for run in runs):
            raise ValueError("runs created in bulk are queued, never claimed at creation")
        if not runs:
            return
        now = self._dt(_now())
        rows: list[list[Any]] = []
        inputs: list[tuple[Any, ...]] = []
        units: list[list[Any]] = []
        turns: dict[str | None, int] = {}
        for run in runs:
            key = self._id(run.id)
            ancestor = self._id(run.ancestor_id) if run.ancestor_id else None
            params = json.dumps(run.params)
            expires = self._dt(run.expires_at)
            state = RunState.QUEUED.value
            rows.append(
                [
                    key,
                    run.pipeline,
                    run.queue,
                    state,
                    params,
                    run.owner_id,
                    ancestor,
                    now,
                    expires,
                    False,  # cancel requested
                    False,  # pinned
                    run.submitter,
                    run.priority,
                ]
            )
            inputs.extend(
                (key, n, i.name, i.kind, i.path, i.size, i.sha256, i.media_type, i.source)
                for n, i in enumerate(run.inputs)
            )
            turn = self._turn(turns, run.submitter)
            units.append(
                [
                    key,
                    _RUN_KIND,
                    run.queue,
                    _QUEUED,
                    0,
                    run.max_attempts,
                    None,
                    None,
                    key,
                    turn,
                ]
            )
        try:
            self.sql.write(
                *self._create_first(runs[0], rows[0]),
                Many(Q["create_run"], rows[1:]),
                Many(Q["create_input"], inputs),
                Many(Q["create_unit_at_turn"], units),
                *self._notify("gristmill_work"),
            )
        except Fenced:
            who = runs[0].submitter
            raise QuotaExceededError(f"the runs of {who} would pass a quota") from None
        except Exception as error:
            self.sql.reset()
            if self.source.is_unavailable(error):
                raise StoreUnavailableError(f"the runs could not be stored: {error}") from error
            raise
        if self.bell is None:
            self._ring("work")
            return
        # The bell hears every unit queued (a reconciler pass sends any it misses after a lost
        # connection here: the runs are committed already).
        keys = [row[0] for row in rows]
        queued: list[Sequence[Any]] = []
        with contextlib.suppress(StoreUnavailableError):
            for first in range(0, len(keys), 500):  # within every database's parameter limit
                chunk = keys[first : first + 500]
                query = Q["queued_units_of_runs"].format(ids=", ".join(["%s"] * len(chunk)))
                queued.extend(self._fetch(query, [_QUEUED, *chunk]))
        self._queued(queued)

    def get_run_and_steps(self, run_id: str) -> tuple[RunRecord, dict[str, StepRecord]]:
        key = self._id(run_id)
        loaded = self._guard(lambda: self.sql.load(key))
        if loaded is None:
            raise NotFoundError(f"no run with id {run_id!r}")
        return decode(loaded)

    def get_runs_and_steps(
        self, run_ids: Sequence[str]
    ) -> list[tuple[RunRecord, dict[str, StepRecord]]]:
        keys = [self._id(run_id) for run_id in run_ids]
        loaded: dict[Any, dict[str, Any]] = {}
        for first in range(0, len(keys), 500):  # within every database's parameter limit
            chunk = keys[first : first + 500]
            for one in self._guard(functools.partial(self.sql.load_many, chunk)):
                loaded[self._id(run_id_of(one["id"]))] = one
        missing = [run_id for run_id, key in zip(run_ids, keys, strict=True) if key not in loaded]
        if missing:
            raise NotFoundError(f"no run with id {missing[0]!r}")
        return [decode(loaded[key]) for key in keys]

    def previous_run(self, pipeline: str, owner_id: int, first_input: InputRecord) -> str | None:
        by_source = first_input.kind in SOURCE_KINDS
        query = Q["latest_of_source"] if by_source else Q["latest_of_name"]
        key = first_input.source if by_source else first_input.name
        args = [pipeline, owner_id, RunState.SUCCEEDED.value, first_input.kind, key]
        rows = self._fetch(query, args)
        return run_id_of(rows[0][0]) if rows else None

    def unfinished(self, run_ids: Sequence[str]) -> list[str]:
        # Keys as the database hands them back (a waiter asks many times: no more parsing).
        keys = [self._id(run_id) for run_id in run_ids]
        pending: set[Any] = set()
        states = [RunState.QUEUED.value, RunState.RUNNING.value]
        for first in range(0, len(keys), 500):  # within every database's parameter limit
            chunk = keys[first : first + 500]
            query = Q["unfinished_runs"].format(ids=", ".join(["%s"] * len(chunk)))
            pending.update(key for (key,) in self._fetch(query, [*states, *chunk]))
        return [run_id for run_id, key in zip(run_ids, keys, strict=True) if key in pending]

    def get_run(self, run_id: str) -> RunRecord:
        return self.get_run_and_steps(run_id)[0]

    def get_steps(self, run_id: str) -> dict[str, StepRecord]:
        return self.get_run_and_steps(run_id)[1]

    def load(self, claim: Claim) -> tuple[RunRecord, dict[str, StepRecord]]:
        if claim.preload is not None:
            return claim.preload  # type: ignore[no-any-return]
        key = self._id(claim.run_id)
        loaded = self._guard(lambda: self.sql.load(key, claimed=True))
        if loaded is None:
            raise NotFoundError(f"no run with id {claim.run_id!r}")
        run, steps = decode(loaded)
        run.attempt = claim.attempt
        return run, steps

    def read_log(self, run_id: str, *, after: int = 0, limit: int = 1000) -> list[LogLine]:
        rows = self._fetch(
            Q["read_log"],
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
                    Q["cancel_queued_run"],
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
                (Q["end_queued_units"], [_DONE, key, _QUEUED]),
                *self._notify("gristmill_done", str(run_id)),
            ):
                self._ring("done")
                return True
            if self._write(
                Fence(Q["cancel_running_run"], [True, now, by, key, RunState.RUNNING.value]),
                *self._notify("gristmill_cancel", str(run_id)),
            ):
                self._ring("cancel")
                return True
            rows = self._fetch(Q["run_state"], [key])
            if not rows:
                raise NotFoundError(f"no run with id {run_id!r}")
            if RunState(rows[0][0]).is_terminal:
                return False
        raise StoreUnavailableError("the run kept changing state; try cancelling it again")

    def cancel_requested(self, claim: Claim) -> bool:
        rows = self._fetch(Q["cancel_requested"], [self._id(claim.run_id)])
        return bool(rows and rows[0][0])

    def requeue(self, run_id: str, *, reason: str) -> bool:
        key = self._id(run_id)
        done = self._write(
            Fence(_REQUEUE, [RunState.QUEUED.value, False, key, *_REQUEUEABLE]),
            (Q["add_next_unit"], [_RUN_KIND, _QUEUED, key, _RUN_KIND]),
            (Q["settle_maps"], [True, key]),
            self._logs(key, [(time.time(), "", "system", f"queued again: {reason}")]),
            *self._notify("gristmill_work"),
            queues=key,
        )
        if not done:
            self._exists(run_id)
            return False
        return True

    def expire(self, run_id: str, *, reason: str) -> bool:
        key = self._id(run_id)
        done = self._write(
            Fence(_EXPIRE, [RunState.EXPIRED.value, reason, self._dt(_now()), key, *_EXPIRABLE]),
            *((delete, [key]) for delete in _DELETE_ROWS),
        )
        if not done:
            self._exists(run_id)
        return done

    def set_pinned(self, run_id: str, pinned: bool) -> bool:
        done = self._write(
            Fence(Q["set_pinned"], [pinned, self._id(run_id), RunState.EXPIRED.value])
        )
        if not done:
            self._exists(run_id)
        return done

    def due_for_expiry(self, now: datetime, *, limit: int) -> list[DueRun]:
        rows = self._fetch(_DUE, [self._dt(now), *_EXPIRABLE, limit])
        return [
            DueRun(run_id_of(key), to_datetime(created), to_datetime(expires))  # type: ignore[arg-type]
            for key, created, expires in rows
        ]

    def unwiped(self, *, limit: int) -> list[str]:
        rows = self._fetch(Q["unwiped"], [RunState.EXPIRED.value, limit])
        return [run_id_of(key) for (key,) in rows]

    def mark_wiped(self, run_id: str) -> None:
        self._write((Q["mark_wiped"], [True, self._id(run_id)]))

    def accept_step(self, run_id: str, step: str, fingerprint: dict[str, Any]) -> bool:
        params = [json.dumps(fingerprint), True, self._id(run_id), step]
        return self._write(Fence(Q["accept_step"], params))

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
            pick, pick_args = Q["pick_unit"], [unit_id, _QUEUED]
        elif run_id is not None:
            pick, pick_args = Q["pick_unit_of_run"], [self._id(run_id), _QUEUED]
        else:
            pick, pick_args = self._pick(queues, limit)
        if self.sql.supports_skip_locked:
            pick += (
                " FOR UPDATE OF u SKIP LOCKED"
                if pick.startswith("SELECT u.")
                else (" FOR UPDATE SKIP LOCKED")
            )
        lease_until = time.time() + lease
        now = self._dt(_now())
        update = (
            Q["claim_units"].format(pick=pick),
            [_CLAIMED, worker, lease_until, *pick_args],
        )
        move = (
            Q["start_claimed_runs"],
            [RunState.RUNNING.value, now, _QUEUED_RUN],
        )
        function = None
        if self.sql.supports_functions and unit_id is None and run_id is None and self.fair:
            function = [worker, list(queues) if queues else None, lease_until, limit, _now()]
        return ClaimSpec(update, move, function)

    def _turn(self, turns: dict[str | None, int], submitter: str | None) -> int:
        """The turn of the next unit of ``submitter`` in a bulk submission: its load, read
        once per submission before the insert (a statement per unit would read it again for
        each, at a cost that grows with the submitter's queue), plus the unit's place among the
        submission's units of that submitter. A run without a submitter has turn 0 (it takes
        no part in the fair order: such runs are taken oldest first)."""
        if submitter is None:
            return 0
        turn = turns.get(submitter)
        if turn is None:
            turn = self._fetch(Q["submitter_load_of"], [submitter])[0][0]
        else:
            turn += 1
        turns[submitter] = turn
        return int(turn)

    def _pick(self, queues: Sequence[str] | None, limit: int) -> tuple[str, list[Any]]:
        """The query picking the next queued units: in the fair order (``pick_units``), or by
        priority only when :attr:`fair` is off (the baseline the fair order is measured
        against)."""
        named = f" AND u.queue IN ({', '.join(['%s'] * len(queues))})" if queues else ""
        pick = Q["pick_units"] if self.fair else Q["pick_units_by_priority"]
        return pick.format(queues=named), [_QUEUED, *(queues or ()), limit]

    def _claims(self, rows: Sequence[Sequence[Any]]) -> list[Claim]:
        claims = []
        for row in rows:
            loaded = self.sql.preload(row)
            preload = None
            if loaded is not None:
                preload = decode(loaded)
                preload[0].attempt = row[2]
            claims.append(
                Claim(
                    unit_id=row[0],
                    run_id=run_id_of(row[1]),
                    attempt=row[2],
                    kind=row[3],
                    preload=preload,
                )
            )
        return claims

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
            and self.sql.looks_before_claiming
            and not self._fetch(_queues(Q["any_queued_unit"], queues), [_QUEUED, *(queues or ())])
        ):
            return []  # look before taking the write lock: an idle poll is a read
        spec = self._claim_spec(worker, queues, lease, limit=limit, unit_id=unit_id, run_id=run_id)
        return self._claims(self._guard(lambda: self.sql.write(claim=spec)))

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
        parts = self._step_parts(claim, outcome, report, lease=lease, final=final)
        if not self._write(*parts, then_claim=then_claim):
            return False
        if final is not None:
            self._ring("done")
        return True

    @property
    def groups_ends(self) -> bool:
        return self.sql.supports_groups

    def end_steps(
        self, ends: Sequence[StepEnd], *, then_claim: NextClaim | None = None
    ) -> list[bool]:
        if not self.sql.supports_groups:
            return super().end_steps(ends, then_claim=then_claim)
        groups = [
            self._step_parts(end.claim, end.outcome, end.report, lease=0.0, final=end.final)
            for end in ends
        ]
        spec = self._next_spec(then_claim)
        written, rows = self._guard(lambda: self.sql.write_groups(groups, claim=spec))
        if then_claim is not None:
            then_claim.claims.extend(self._claims(rows))
        if any(written):
            self._ring("done")
        return written  # type: ignore[no-any-return]

    def _step_parts(
        self,
        claim: Claim,
        outcome: StepOutcome,
        report: Report,
        *,
        lease: float,
        final: RunState | None,
    ) -> list[Any]:
        """What :meth:`save_step` writes, its fence first."""
        if final is not None:
            check_run_end(final)
        key = self._id(claim.run_id)
        ending = final is not None
        fingerprint = outcome.fingerprint
        parts: list[Any] = [
            self._fence(
                claim,
                None if ending else time.time() + lease,
                UnitState.DONE if ending else UnitState.CLAIMED,
            ),
            (
                Q["upsert_step"],
                [
                    key,
                    outcome.name,
                    outcome.position,
                    outcome.state,
                    claim.attempt,
                    outcome.result_json,
                    json.dumps(fingerprint) if fingerprint is not None else None,
                    outcome.error,
                    False,
                    outcome.started_at,
                    outcome.finished_at,
                ],
            ),
        ]
        if outcome.replaces_outputs or outcome.outputs:
            outputs = [
                (key, o.step, o.name, o.path, o.size, o.sha256, o.media_type)
                for o in outcome.outputs
            ]
            parts.append((Q["delete_step_outputs"], [key, outcome.name]))
            parts.append(Many(Q["add_output"], outputs))
        if final is None:
            parts += self._report(key, report)
        else:
            parts += [self._logs(key, report.logs), *self._end(key, claim.run_id, final, None)]
        return parts

    def save_inputs(
        self, claim: Claim, inputs: Mapping[int, InputRecord], report: Report, *, lease: float
    ) -> bool:
        key = self._id(claim.run_id)
        return self._write(
            self._fence(claim, time.time() + lease),
            *(
                (
                    Q["save_input"],
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
        rows = self._fetch(Q["cancel_requested"], [key])
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

    def release(self, claim: Claim, report: Report, *, why: str = STOPPING) -> bool:
        key = self._id(claim.run_id)
        report.logs.append(
            (time.time(), "", "system", f"attempt {claim.attempt} released by {why}")
        )
        # A batch unit goes back to the queue alone: its run stays running.
        requeue_run = [(Q["requeue_released_run"], [RunState.QUEUED.value, key, _RUNNING])]
        return self._write(
            Fence(Q["release_unit"], [_QUEUED, claim.unit_id, claim.attempt, _CLAIMED]),
            self._logs(key, report.logs),
            *(requeue_run if claim.kind == _RUN_KIND else ()),
            *self._notify("gristmill_work"),
            queues=key,
        )

    def _lose_batch(self, unit: Sequence[Any], reason: str, failures: int, give_up: bool) -> bool:
        """Requeue a lost batch unit, or fail its batch past the attempt limit (the map's
        counter goes down as if it had ended)."""
        raise NotImplementedError

    def _lose(self, unit: Sequence[Any], reason: str) -> bool:
        unit_id, run_key, attempt, failures, max_attempts, kind = unit
        run_id = run_id_of(run_key)
        failures += 1
        give_up = failures >= max_attempts
        if kind == UnitKind.BATCH:
            return self._lose_batch(unit, reason, failures, give_up)
        fence = Fence(
            Q["lose_unit"],
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
                (Q["requeue_lost_run"], [RunState.QUEUED.value, run_key]),
                *self._notify("gristmill_work"),
            ]
        if not self._write(fence, *parts, queues=None if give_up else run_key):
            return False
        if give_up:
            self._ring("done")
        return True

    def release_worker(self, worker: str, reason: str) -> int:
        units = self._fetch(Q["units_of_worker"], [_CLAIMED, worker])
        return sum(self._lose(unit, reason) for unit in units)

    def held_by(self, worker: str) -> list[Claim]:
        return self._claims(self._fetch(Q["held_by"], [_CLAIMED, worker]))

    def reap(self) -> int:
        units = self._fetch(Q["units_past_lease"], [_CLAIMED, time.time()])
        return sum(self._lose(unit, "its lease expired") for unit in units)

    def queued_units(self, *, limit: int) -> list[QueuedUnit]:
        rows = self._fetch(Q["queued_units"], [_QUEUED, limit])
        return [QueuedUnit(unit_id, queue) for unit_id, queue in rows]

"""The memory store's policy: runs, steps, units, claims, leases, fences, requeue, expiry and
doorbells in this process's memory (its map steps are added by
:class:`gristmill.store.memory.maps.MemoryStore`)."""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gristmill.errors import NotFoundError, StoreError
from gristmill.states import (
    EXPIRABLE_RUN_STATES,
    RERUNNABLE_RUN_STATES,
    RunState,
    UnitKind,
    UnitState,
    check_run_end,
)
from gristmill.store.base import QuotaExceededError, Store
from gristmill.store.maps import BatchRow, MapRow
from gristmill.store.records import (
    CANCELLED_MESSAGE,
    LOCK_LEASE,
    NEVER_STARTED_MESSAGE,
    SOURCE_KINDS,
    STOPPING,
    BatchSpec,
    Claim,
    DueRun,
    Failure,
    InputRecord,
    LogLine,
    NewRun,
    NextClaim,
    OutputRecord,
    QueuedUnit,
    QuotaUsage,
    Renewal,
    Report,
    RunRecord,
    StepOutcome,
    StepRecord,
)

_MAX_LOG_LINES = 10_000
"""The most log lines one read returns, as in the SQL store."""


def _key(run_id: str) -> str:
    try:
        return str(uuid.UUID(str(run_id)))
    except ValueError:
        raise NotFoundError(f"no run with id {run_id!r}") from None


def _as_stored(value: Any) -> Any:
    """``value`` as a database gives it back: through JSON (tuples become lists)."""
    return json.loads(json.dumps(value)) if value is not None else None


@dataclass
class _Unit:
    id: int
    run_id: str
    queue: str
    state: str
    """``queued``, ``claimed`` or ``done``."""
    attempt: int
    max_attempts: int
    failures: int = 0
    worker: str | None = None
    lease_until: float | None = None
    last_error: str | None = None
    kind: str = UnitKind.RUN
    turn: int = 0
    """Its submitter's load when it was queued (see :meth:`Store.claim`)."""


@dataclass
class _Batch:
    spec: BatchSpec
    unit_id: int
    row: BatchRow
    findings: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class _Map:
    row: MapRow
    batches: dict[int, _Batch] = field(default_factory=dict)


@dataclass
class _Run:
    record: RunRecord
    """Kept as stored: ``params`` as JSON text in ``params_json``, ``attempt`` unused."""
    params_json: str
    wiped: bool = False
    steps: dict[str, StepRecord] = field(default_factory=dict)
    """Stored with ``result`` as JSON text, and no outputs."""
    outputs: list[OutputRecord] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    units: list[_Unit] = field(default_factory=list)
    maps: dict[str, _Map] = field(default_factory=dict)
    submitter: str | None = None
    priority: int = 0

    def latest_attempt(self) -> int:
        """The attempt of the run's latest ``run`` unit (batch units have their own)."""
        runs = [unit for unit in self.units if unit.kind == UnitKind.RUN]
        return runs[-1].attempt if runs else 0


class _Bell:
    """A doorbell within this process, with the socket doorbell's behaviour: the first wait
    only starts listening, and a ring made since the last wait ended is not missed."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._rings = 0
        self._seen: int | None = None

    def ring(self) -> None:
        with self._condition:
            self._rings += 1
            self._condition.notify_all()

    def wait(self, timeout: float) -> bool:
        """Whether a ring came (the first wait, which only starts listening, says True)."""
        with self._condition:
            rang = True
            if self._seen is not None:
                seen = self._seen
                rang = self._condition.wait_for(lambda: self._rings != seen, max(0.0, timeout))
            self._seen = self._rings
            return rang


class MemoryPolicy(Store):
    """The policy of the memory store, without map steps (see
    :class:`~gristmill.store.memory.MemoryStore`)."""

    supports_processes = False

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._runs: dict[str, _Run] = {}
        self._units: dict[int, _Unit] = {}
        self._next_unit = 1
        self._next_log = 1
        self._work = _Bell()
        self._done = _Bell()
        self._cancel = _Bell()
        self._leases: dict[str, tuple[int, float]] = {}
        """Locks held (:meth:`try_lock`): by name, the holding thread and when its lease ends."""

    # -- helpers --------------------------------------------------------------------------

    def _run(self, run_id: str) -> _Run:
        run = self._runs.get(_key(run_id))
        if run is None:
            raise NotFoundError(f"no run with id {run_id!r}")
        return run

    def _held(self, claim: Claim) -> _Unit | None:
        """The claimed unit if ``claim`` still holds it (the fence), else None."""
        unit = self._units.get(claim.unit_id)
        if unit is None or unit.attempt != claim.attempt or unit.state != UnitState.CLAIMED:
            return None
        return unit

    def _load(self, run: _Run) -> int:
        """How many units the run's submitter has queued or running (0 without a
        submitter): the turn of a unit it queues now."""
        if run.submitter is None:
            return 0
        return sum(
            1
            for unit in self._units.values()
            if unit.state in (UnitState.QUEUED, UnitState.CLAIMED)
            and self._runs[unit.run_id].submitter == run.submitter
            and self._runs[unit.run_id].record.state in (RunState.QUEUED, RunState.RUNNING)
        )

    def _requeue(self, unit: _Unit) -> None:
        """Put ``unit`` back in the queue with a fresh turn."""
        unit.turn = self._load(self._runs[unit.run_id])
        unit.state, unit.worker, unit.lease_until = UnitState.QUEUED, None, None

    def _add_unit(
        self, run: _Run, state: str, attempt: int, max_attempts: int, position: int = 0
    ) -> _Unit:
        """A new unit of ``run``; ``position`` is a batch unit's among those queued with it."""
        unit = _Unit(self._next_unit, run.record.id, run.record.queue, state, attempt, max_attempts)
        unit.turn = self._load(run) + position
        self._next_unit += 1
        self._units[unit.id] = unit
        run.units.append(unit)
        return unit

    def _log(self, run: _Run, lines: Iterable[tuple[float, str, str, str]]) -> None:
        for at, step, stream, text in lines:
            run.logs.append(LogLine(self._next_log, at, step, stream, text))
            self._next_log += 1

    def _write_logs(self, run: _Run, report: Report) -> None:
        self._log(run, report.logs)
        report.logs.clear()

    def _write_report(self, run: _Run, report: Report) -> None:
        self._write_logs(run, report)
        if not report.status:
            return
        record = run.record
        record.current_step, record.stage = report.current_step, report.stage
        record.progress_done, record.progress_total = report.progress_done, report.progress_total

    def _end(self, run: _Run, state: RunState, failure: Failure | None) -> None:
        record = run.record
        step = failure.step if failure else None
        if record.cancel_requested:
            # A cancel requested before the run ends wins over whatever the worker saw.
            message = failure.message if failure and state == RunState.CANCELLED else None
            state, failure = RunState.CANCELLED, Failure(message or CANCELLED_MESSAGE, step=step)
        record.interrupted_step = step if state == RunState.CANCELLED else None
        record.state = state
        record.finished_at = datetime.now(UTC)
        record.current_step = record.stage = None
        record.progress_done = record.progress_total = None
        record.error_message = failure.message if failure else None
        record.error_ref = failure.ref if failure else None
        record.error_traceback = failure.traceback if failure else None
        for unit in run.units:
            if unit.state == UnitState.QUEUED:
                unit.state = UnitState.DONE

    def _claim_units(self, units: Sequence[_Unit], worker: str, lease: float) -> list[Claim]:
        claims = []
        for unit in units:
            unit.state, unit.attempt = UnitState.CLAIMED, unit.attempt + 1
            unit.worker, unit.lease_until = worker, time.time() + lease
            record = self._runs[unit.run_id].record
            if record.state == RunState.QUEUED:
                record.state = RunState.RUNNING
                record.started_at = record.started_at or datetime.now(UTC)
            claims.append(Claim(unit.id, unit.run_id, unit.attempt, unit.kind))
        return claims

    def _queued(self, queues: Sequence[str] | None) -> list[_Unit]:
        """The queued units of ``queues`` in the fair order (see :meth:`Store.claim`)."""
        queued = [
            unit
            for unit in self._units.values()
            if unit.state == UnitState.QUEUED and (not queues or unit.queue in queues)
        ]
        return sorted(queued, key=lambda u: (-self._runs[u.run_id].priority, u.turn, u.id))

    def _check_quota(self, run: NewRun) -> None:
        limits = run.quota
        if limits is None or run.submitter is None:
            return
        usage = self._usage(run.submitter)
        if (
            (limits.concurrent is not None and usage.concurrent + limits.runs > limits.concurrent)
            or (limits.per_day is not None and usage.runs_today + limits.runs > limits.per_day)
            or (
                limits.storage_bytes is not None
                and usage.storage_bytes + limits.new_bytes > limits.storage_bytes
            )
        ):
            raise QuotaExceededError(f"the run of {run.submitter} would pass a quota")

    def _usage(self, submitter: str) -> QuotaUsage:
        since = datetime.now(UTC) - timedelta(days=1)
        mine = [run for run in self._runs.values() if run.submitter == submitter]
        live = (RunState.QUEUED, RunState.RUNNING)
        today = [run.record.created_at for run in mine if run.record.created_at >= since]
        kept = [run for run in mine if run.record.state != RunState.EXPIRED]
        stored = sum(
            sum(i.size for i in run.record.inputs) + sum(o.size for o in run.outputs)
            for run in kept
        )
        return QuotaUsage(
            concurrent=sum(1 for run in mine if run.record.state in live),
            runs_today=len(today),
            storage_bytes=stored,
            oldest_today=min(today, default=None),
            next_expiry=min((run.record.expires_at for run in kept), default=None),
        )

    def quota_usage(self, submitter: str) -> QuotaUsage:
        with self._lock:
            return self._usage(submitter)

    def _then_claim(self, then_claim: NextClaim | None) -> None:
        if then_claim is not None:
            units = self._queued(then_claim.queues)[: then_claim.limit]
            then_claim.claims.extend(self._claim_units(units, then_claim.worker, then_claim.lease))

    def _read(self, run: _Run, attempt: int) -> tuple[RunRecord, dict[str, StepRecord]]:
        record = dataclasses.replace(
            run.record,
            params=json.loads(run.params_json),
            inputs=list(run.record.inputs),
            attempt=attempt,
        )
        steps = {}
        for step in sorted(run.steps.values(), key=lambda s: s.position):
            steps[step.name] = dataclasses.replace(
                step,
                result=json.loads(step.result) if step.result is not None else None,
                fingerprint=copy.deepcopy(step.fingerprint),
                outputs=[o for o in run.outputs if o.step == step.name],
            )
        return record, steps

    # -- submitting and reading -----------------------------------------------------------

    def create_run(self, run: NewRun) -> Claim | None:
        key = _key(run.id)
        held = run.claimed_by is not None
        now = datetime.now(UTC)
        with self._lock:
            if key in self._runs:
                raise StoreError(f"a run with id {key} exists already")
            self._check_quota(run)
            record = RunRecord(
                id=key,
                pipeline=run.pipeline,
                state=RunState.RUNNING if held else RunState.QUEUED,
                params={},
                inputs=list(run.inputs),
                queue=run.queue,
                created_at=now,
                expires_at=run.expires_at,
                started_at=now if held else None,
                owner_id=run.owner_id,
                ancestor_id=_key(run.ancestor_id) if run.ancestor_id else None,
            )
            stored = self._runs[key] = _Run(record, json.dumps(run.params))
            stored.submitter, stored.priority = run.submitter, run.priority
            state = UnitState.CLAIMED if held else UnitState.QUEUED
            unit = self._add_unit(stored, state, 1 if held else 0, run.max_attempts)
            if not held:
                self._queued_now([unit])
                return None
            unit.worker, unit.lease_until = run.claimed_by, time.time() + run.lease
            return Claim(unit.id, key, 1)

    def create_runs(self, runs: Sequence[NewRun]) -> None:
        if any(run.claimed_by is not None for run in runs):
            raise ValueError("runs created in bulk are queued, never claimed at creation")
        now = datetime.now(UTC)
        with self._lock:
            keys = [_key(run.id) for run in runs]
            clash = next((k for k in keys if k in self._runs), None)
            if clash is not None or len(set(keys)) != len(keys):
                raise StoreError(f"a run with id {clash or keys[0]} exists already")
            params = [json.dumps(run.params) for run in runs]  # all encoded before any is stored
            if runs:
                self._check_quota(runs[0])
            added: list[_Unit] = []
            for key, run, encoded in zip(keys, runs, params, strict=True):
                record = RunRecord(
                    id=key,
                    pipeline=run.pipeline,
                    state=RunState.QUEUED,
                    params={},
                    inputs=list(run.inputs),
                    queue=run.queue,
                    created_at=now,
                    expires_at=run.expires_at,
                    owner_id=run.owner_id,
                    ancestor_id=_key(run.ancestor_id) if run.ancestor_id else None,
                )
                stored = self._runs[key] = _Run(record, encoded)
                stored.submitter, stored.priority = run.submitter, run.priority
                added.append(self._add_unit(stored, UnitState.QUEUED, 0, run.max_attempts))
            if runs:
                self._queued_now(added)

    def previous_run(self, pipeline: str, owner_id: int, first_input: InputRecord) -> str | None:
        by_source = first_input.kind in SOURCE_KINDS

        def same(run: RunRecord) -> bool:
            if not run.inputs or run.inputs[0].kind != first_input.kind:
                return False
            if by_source:
                return run.inputs[0].source == first_input.source
            return run.inputs[0].name == first_input.name

        with self._lock:
            found = [
                stored.record
                for stored in self._runs.values()
                if stored.record.pipeline == pipeline
                and stored.record.owner_id == owner_id
                and stored.record.state == RunState.SUCCEEDED
                and same(stored.record)
            ]
        return max(found, key=lambda run: run.created_at).id if found else None

    def get_run_and_steps(self, run_id: str) -> tuple[RunRecord, dict[str, StepRecord]]:
        with self._lock:
            run = self._run(run_id)
            return self._read(run, run.latest_attempt())

    def get_run(self, run_id: str) -> RunRecord:
        return self.get_run_and_steps(run_id)[0]

    def get_steps(self, run_id: str) -> dict[str, StepRecord]:
        return self.get_run_and_steps(run_id)[1]

    def load(self, claim: Claim) -> tuple[RunRecord, dict[str, StepRecord]]:
        with self._lock:
            return self._read(self._run(claim.run_id), claim.attempt)

    def read_log(self, run_id: str, *, after: int = 0, limit: int = 1000) -> list[LogLine]:
        limit = max(0, min(int(limit), _MAX_LOG_LINES))
        with self._lock:
            lines = [line for line in self._run(run_id).logs if line.id > after]
        return lines[:limit]

    def request_cancel(self, run_id: str, *, by: str | None = None) -> bool:
        with self._lock:
            run = self._run(run_id)
            record = run.record
            if record.state not in (RunState.RUNNING, RunState.QUEUED):
                return False
            if record.cancel_requested_at is None:
                record.cancel_requested_at, record.cancel_requested_by = datetime.now(UTC), by
            record.cancel_requested = True
            if record.state == RunState.RUNNING:
                self._cancel.ring()
                return True
            record.state, record.finished_at = RunState.CANCELLED, datetime.now(UTC)
            record.error_message = NEVER_STARTED_MESSAGE
            for unit in run.units:
                if unit.state == UnitState.QUEUED:
                    unit.state = UnitState.DONE
        self._done.ring()
        return True

    def requeue(self, run_id: str, *, reason: str) -> bool:
        with self._lock:
            run = self._run(run_id)
            record = run.record
            if record.state not in RERUNNABLE_RUN_STATES:
                return False
            record.state, record.finished_at = RunState.QUEUED, None
            record.error_message = record.error_ref = record.error_traceback = None
            record.cancel_requested = False
            record.cancel_requested_at = record.cancel_requested_by = None
            record.interrupted_step = None
            record.current_step = record.stage = None
            record.progress_done = record.progress_total = None
            # Attempt numbers keep rising over the run's life: they name work directories.
            latest = run.units[-1]
            unit = self._add_unit(run, UnitState.QUEUED, run.latest_attempt(), latest.max_attempts)
            for stored_map in run.maps.values():
                stored_map.row.settled = True
            self._log(run, [(time.time(), "", "system", f"queued again: {reason}")])
        self._queued_now([unit])
        return True

    def expire(self, run_id: str, *, reason: str) -> bool:
        with self._lock:
            run = self._run(run_id)
            record = run.record
            if record.state not in EXPIRABLE_RUN_STATES:
                return False
            record.state, record.error_message = RunState.EXPIRED, reason
            record.error_ref = record.error_traceback = None
            record.current_step = record.stage = None
            record.progress_done = record.progress_total = None
            record.expires_at = datetime.now(UTC)
            record.inputs = []
            run.steps.clear()
            run.outputs.clear()
            run.logs.clear()
            run.maps.clear()
            for unit in run.units:
                del self._units[unit.id]
            run.units.clear()
            return True

    def set_pinned(self, run_id: str, pinned: bool) -> bool:
        with self._lock:
            record = self._run(run_id).record
            if record.state == RunState.EXPIRED:
                return False
            record.pinned = pinned
            return True

    def due_for_expiry(self, now: datetime, *, limit: int) -> list[DueRun]:
        with self._lock:
            due = [
                DueRun(run.record.id, run.record.created_at, run.record.expires_at)
                for run in self._runs.values()
                if run.record.state in EXPIRABLE_RUN_STATES
                and not run.record.pinned
                and run.record.expires_at <= now
            ]
        due.sort(key=lambda run: run.expires_at)
        return due[:limit]

    def unwiped(self, *, limit: int) -> list[str]:
        with self._lock:
            runs = [
                (run.record.expires_at, run.record.id)
                for run in self._runs.values()
                if run.record.state == RunState.EXPIRED and not run.wiped
            ]
        runs.sort()
        return [run_id for _, run_id in runs[:limit]]

    def mark_wiped(self, run_id: str) -> None:
        with self._lock:
            run = self._runs.get(_key(run_id))
            if run is not None:
                run.wiped = True

    def accept_step(self, run_id: str, step: str, fingerprint: dict[str, Any]) -> bool:
        with self._lock:
            run = self._runs.get(_key(run_id))
            stored = run.steps.get(step) if run is not None else None
            if stored is None:
                return False
            stored.fingerprint, stored.accepted = _as_stored(fingerprint), True
            return True

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
        with self._lock:
            if unit_id is not None:
                unit = self._units.get(unit_id)
                units = [unit] if unit is not None and unit.state == UnitState.QUEUED else []
            elif run_id is not None:
                run = self._runs.get(_key(run_id))
                queued = [u for u in run.units if u.state == UnitState.QUEUED] if run else []
                units = queued[:1]
            else:
                units = self._queued(queues)[: max(0, limit)]
            return self._claim_units(units, worker, lease)

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
        with self._lock:
            unit = self._held(claim)
            if unit is None:
                return False
            run = self._runs[unit.run_id]
            if final is None:
                unit.lease_until = time.time() + lease
            else:
                unit.state, unit.lease_until = UnitState.DONE, None
            self._store_step(run, claim.attempt, outcome)
            if final is None:
                self._write_report(run, report)
            else:
                self._write_logs(run, report)
                self._end(run, final, None)
            self._then_claim(then_claim)
        if final is not None:
            self._done.ring()
        return True

    def _store_step(self, run: _Run, attempt: int, outcome: StepOutcome) -> None:
        run.steps[outcome.name] = StepRecord(
            name=outcome.name,
            position=outcome.position,
            state=outcome.state,
            attempt=attempt,
            result=outcome.result_json,
            fingerprint=_as_stored(outcome.fingerprint),
            error=outcome.error,
            started_at=outcome.started_at,
            finished_at=outcome.finished_at,
        )
        if outcome.replaces_outputs or outcome.outputs:
            run.outputs = [o for o in run.outputs if o.step != outcome.name]
            run.outputs.extend(copy.copy(o) for o in outcome.outputs)

    def save_inputs(
        self, claim: Claim, inputs: Mapping[int, InputRecord], report: Report, *, lease: float
    ) -> bool:
        with self._lock:
            unit = self._held(claim)
            if unit is None:
                return False
            unit.lease_until = time.time() + lease
            run = self._runs[unit.run_id]
            stored = run.record.inputs
            for position, record in inputs.items():
                # The kind stays what was submitted, as in the SQL store.
                stored[position] = replace(record, kind=stored[position].kind)
            self._write_report(run, report)
            return True

    def held_by(self, worker: str) -> list[Claim]:
        with self._lock:
            return [
                Claim(unit.id, unit.run_id, unit.attempt, unit.kind)
                for unit in sorted(self._units.values(), key=lambda unit: unit.id)
                if unit.state == UnitState.CLAIMED and unit.worker == worker
            ]

    def cancel_requested(self, claim: Claim) -> bool:
        with self._lock:
            return self._run(claim.run_id).record.cancel_requested

    def flush(self, claim: Claim, report: Report, *, lease: float) -> Renewal:
        with self._lock:
            unit = self._held(claim)
            if unit is None:
                return Renewal(owned=False, cancel_requested=False)
            unit.lease_until = time.time() + lease
            run = self._runs[unit.run_id]
            self._write_report(run, report)
            return Renewal(owned=True, cancel_requested=run.record.cancel_requested)

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
        with self._lock:
            unit = self._held(claim)
            if unit is None:
                return False
            unit.state, unit.lease_until = UnitState.DONE, None
            run = self._runs[unit.run_id]
            self._write_logs(run, report)
            self._end(run, state, failure)
            self._then_claim(then_claim)
        self._done.ring()
        return True

    def release(self, claim: Claim, report: Report, *, why: str = STOPPING) -> bool:
        report.logs.append(
            (time.time(), "", "system", f"attempt {claim.attempt} released by {why}")
        )
        with self._lock:
            unit = self._held(claim)
            if unit is None:
                return False
            self._requeue(unit)
            run = self._runs[unit.run_id]
            self._write_logs(run, report)
            if run.record.state == RunState.RUNNING and unit.kind == UnitKind.RUN:
                run.record.state, run.record.stage = RunState.QUEUED, None
        self._queued_now([unit])
        return True

    def _lose(self, unit: _Unit, reason: str) -> bool:
        """Requeue a unit whose worker is gone, or fail its run past the attempt limit."""
        run = self._runs[unit.run_id]
        unit.failures += 1
        give_up = unit.failures >= unit.max_attempts
        if give_up:
            unit.state, unit.worker, unit.lease_until = UnitState.DONE, None, None
        else:
            self._requeue(unit)
        unit.last_error = reason
        if unit.kind == UnitKind.BATCH:
            return self._lose_batch(run, unit, reason, give_up)
        if give_up:
            message = (
                f"worker lost ({reason}) on attempt {unit.attempt}; "
                f"gave up after {unit.failures} lost attempts"
            )
            self._log(run, [(time.time(), "", "system", message)])
            self._end(run, RunState.FAILED, Failure(message))
            self._done.ring()
        else:
            note = f"attempt {unit.attempt} lost: worker lost ({reason}); retrying"
            self._log(run, [(time.time(), "", "system", note)])
            run.record.state, run.record.stage = RunState.QUEUED, None
            self._queued_now([unit])
        return True

    def release_worker(self, worker: str, reason: str) -> int:
        with self._lock:
            units = [
                u
                for u in self._units.values()
                if u.state == UnitState.CLAIMED and u.worker == worker
            ]
            return sum(self._lose(unit, reason) for unit in units)

    def reap(self) -> int:
        now = time.time()
        with self._lock:
            units = [
                unit
                for unit in self._units.values()
                if unit.state == UnitState.CLAIMED and unit.lease_until is not None
                if unit.lease_until < now
            ]
            return sum(self._lose(unit, "its lease expired") for unit in units)

    def queued_units(self, *, limit: int) -> list[QueuedUnit]:
        with self._lock:
            units = sorted(
                (u for u in self._units.values() if u.state == UnitState.QUEUED),
                key=lambda u: u.id,
            )
            return [QueuedUnit(u.id, u.queue) for u in units[:limit]]

    def try_lock(self, name: str, *, lease: float = LOCK_LEASE) -> bool:
        """A lease held by the calling thread (the threads of this process share the store)."""
        now = time.time()
        holder = threading.get_ident()
        with self._lock:
            held = self._leases.get(name)
            if held is not None and held[0] != holder and held[1] >= now:
                return False
            self._leases[name] = (holder, now + lease)
            return True

    def unlock(self, name: str) -> None:
        with self._lock:
            held = self._leases.get(name)
            if held is not None and held[0] == threading.get_ident():
                del self._leases[name]

    def _queued_now(self, units: Sequence[_Unit]) -> None:
        if self.bell is None:
            self._work.ring()
        else:
            self.announce([QueuedUnit(u.id, u.queue) for u in units])

    def _lose_batch(self, run: _Run, unit: _Unit, reason: str, give_up: bool) -> bool:
        """Requeue a lost batch unit, or fail its batch past the attempt limit (the map
        steps' part, :class:`~gristmill.store.memory.MemoryStore`)."""
        raise NotImplementedError

    # -- doorbells ------------------------------------------------------------------------

    def ring_work(self) -> None:
        self._work.ring()

    def wait_for_work(self, timeout: float) -> None:
        self._work.wait(timeout)

    def wait_for_cancel(self, timeout: float) -> bool:
        return self._cancel.wait(timeout)

    def ring_done(self, run_id: str) -> None:
        self._done.ring()

    def wait_for_done(self, timeout: float) -> None:
        self._done.wait(timeout)

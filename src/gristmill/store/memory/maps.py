"""The memory store with map steps: :class:`MemoryPolicy` plus cutting a map into batches,
ending a batch and counting the map down, reading a map's status and findings, and retrying
failed batches, as the SQL store does them (see :mod:`gristmill.store.base`)."""

from __future__ import annotations

import copy
import json
import time

from gristmill.states import FINAL_RUN_STATES, BatchState, RunState, UnitKind, UnitState
from gristmill.store.maps import BatchRow, MapRow, lost_batch_message, status
from gristmill.store.memory.policy import MemoryPolicy, _as_stored, _Batch, _Map, _Run, _Unit
from gristmill.store.records import (
    MAX_EXAMPLES,
    MAX_FAILED_ITEMS,
    BatchOutcome,
    BatchRecord,
    Claim,
    FindingRecord,
    MapStatus,
    NewMap,
    NextClaim,
    Report,
)


class MemoryStore(MemoryPolicy):
    """A thread-safe :class:`~gristmill.store.base.Store` in this process's memory."""

    # -- map steps ------------------------------------------------------------------------

    def _batch_of(self, unit_id: int) -> tuple[_Run, _Map, _Batch] | None:
        unit = self._units.get(unit_id)
        if unit is None:
            return None
        run = self._runs[unit.run_id]
        for stored_map in run.maps.values():
            for batch in stored_map.batches.values():
                if batch.unit_id == unit_id:
                    return run, stored_map, batch
        return None

    def start_map(
        self,
        claim: Claim,
        new_map: NewMap,
        report: Report,
        *,
        then_claim: NextClaim | None = None,
    ) -> bool:
        with self._lock:
            unit = self._held(claim)
            if unit is None:
                return False
            unit.state, unit.lease_until = UnitState.DONE, None
            run = self._runs[unit.run_id]
            old = run.maps.pop(new_map.step, None)
            for batch in old.batches.values() if old else ():
                stale = self._units.get(batch.unit_id)
                if stale is not None:
                    stale.state, stale.lease_until = UnitState.DONE, None
            row = MapRow(
                new_map.step,
                new_map.position,
                new_map.on_failure,
                _as_stored(new_map.fingerprint),
                1,
                len(new_map.batches),
                len(new_map.batches),
                new_map.items_total,
                0,
                False,
            )
            stored = run.maps[new_map.step] = _Map(row)
            queued: list[_Unit] = []
            for spec in new_map.batches:
                batch_unit = self._add_unit(run, UnitState.QUEUED, 0, unit.max_attempts)
                batch_unit.kind = UnitKind.BATCH
                queued.append(batch_unit)
                stored.batches[spec.number] = _Batch(
                    spec,
                    batch_unit.id,
                    BatchRow(spec.number, spec.first_item, spec.items, BatchState.PENDING),
                )
            if not new_map.batches:
                queued.append(
                    self._add_unit(run, UnitState.QUEUED, run.latest_attempt(), unit.max_attempts)
                )
            self._write_report(run, report)
            self._then_claim(then_claim)
        self._queued_now(queued)
        return True

    def load_batch(self, claim: Claim) -> BatchRecord | None:
        with self._lock:
            found = self._batch_of(claim.unit_id)
            if found is None:
                return None
            run, stored_map, batch = found
            failed = stored_map.row.on_failure == "fail" and any(
                b.row.state == BatchState.FAILED for b in stored_map.batches.values()
            )
            return BatchRecord(
                run.record.id, stored_map.row.step, len(stored_map.batches), batch.spec, failed
            )

    def save_batch(
        self,
        claim: Claim,
        outcome: BatchOutcome,
        report: Report,
        *,
        then_claim: NextClaim | None = None,
    ) -> bool:
        with self._lock:
            unit = self._held(claim)
            found = self._batch_of(claim.unit_id)
            if unit is None or found is None:
                return False
            unit.state, unit.lease_until = UnitState.DONE, None
            run, stored_map, batch = found
            batch.findings = [(int(i), str(k), str(f)) for i, k, f in outcome.findings]
            batch.row = BatchRow(
                batch.spec.number,
                batch.spec.first_item,
                batch.spec.items,
                outcome.state,
                outcome.items_done,
                outcome.items_failed,
                dict(outcome.counts),
                _as_stored({k: list(v)[:MAX_EXAMPLES] for k, v in outcome.examples.items()}),
                _as_stored(list(outcome.failed_items)[:MAX_FAILED_ITEMS]),
                outcome.error,
            )
            walk = self._count_down(run, stored_map, outcome.items_done)
            self._write_logs(run, report)
            self._then_claim(then_claim)
        self._queued_now([walk] if walk is not None else [])
        return True

    def _count_down(self, run: _Run, stored_map: _Map, items_done: int) -> _Unit | None:
        """Count the map's remaining batches down; return the ``run`` unit queued when the
        count reaches zero."""
        row = stored_map.row
        row.remaining -= 1
        row.items_done += items_done
        record = run.record
        if record.state != RunState.RUNNING:
            return None
        record.current_step = row.step
        record.stage = f"batch {row.batches_total - row.remaining} of {row.batches_total}"
        record.progress_done, record.progress_total = row.items_done, row.items_total
        if row.remaining == 0:
            max_attempts = run.units[-1].max_attempts
            return self._add_unit(run, UnitState.QUEUED, run.latest_attempt(), max_attempts)
        return None

    def _lose_batch(self, run: _Run, unit: _Unit, reason: str, give_up: bool) -> bool:
        found = self._batch_of(unit.id)
        if not give_up or found is None:
            note = f"batch unit attempt {unit.attempt} lost: worker lost ({reason}); retrying"
            self._log(run, [(time.time(), "", "system", note)])
            self._queued_now([unit])
            return True
        _, stored_map, batch = found
        message = lost_batch_message(reason, unit.attempt, unit.failures)
        spec = batch.spec
        batch.findings = []
        batch.row = BatchRow(
            spec.number, spec.first_item, spec.items, BatchState.FAILED, error=message
        )
        self._log(
            run,
            [
                (
                    time.time(),
                    stored_map.row.step,
                    "system",
                    f"batch {spec.number} failed: {message}",
                )
            ],
        )
        walk = self._count_down(run, stored_map, 0)
        self._queued_now([walk] if walk is not None else [])
        return True

    def map_status(self, run_id: str) -> list[MapStatus]:
        with self._lock:
            run = self._run(run_id)
            maps = sorted(run.maps.values(), key=lambda m: m.row.position)
            return [status(copy.deepcopy(m.row), [b.row for b in m.batches.values()]) for m in maps]

    def read_findings(
        self,
        run_id: str,
        step: str,
        *,
        after: int = 0,
        limit: int = 1000,
        kind: str | None = None,
    ) -> list[FindingRecord]:
        limit = max(1, min(int(limit), 10_000))
        with self._lock:
            stored_map = self._run(run_id).maps.get(step)
            if stored_map is None:
                return []
            found = [
                (item, batch.spec.number, k, text)
                for batch in stored_map.batches.values()
                for item, k, text in batch.findings
                if item > after and (kind is None or k == kind)
            ]
        found.sort(key=lambda f: f[0])
        if len(found) > limit:
            last = found[limit - 1][0]
            found = [f for f in found if f[0] <= last]
        return [FindingRecord(item, number, k, json.loads(text)) for item, number, k, text in found]

    def retry_failed_batches(self, run_id: str) -> int:
        with self._lock:
            run = self._run(run_id)
            record = run.record
            if record.state not in FINAL_RUN_STATES:
                return 0
            retried = 0
            queued: list[_Unit] = []
            max_attempts = run.units[-1].max_attempts if run.units else 3
            for stored_map in run.maps.values():
                again = [
                    b
                    for b in stored_map.batches.values()
                    if b.row.state != BatchState.DONE or b.row.items_failed
                ]
                if not again:
                    continue
                row = stored_map.row
                row.items_done -= sum(b.row.items_done for b in again)
                row.remaining, row.generation, row.settled = len(again), row.generation + 1, False
                for batch in again:
                    spec = batch.spec
                    batch.findings = []
                    batch.row = BatchRow(
                        spec.number, spec.first_item, spec.items, BatchState.PENDING
                    )
                    batch_unit = self._add_unit(run, UnitState.QUEUED, 0, max_attempts)
                    batch_unit.kind = UnitKind.BATCH
                    batch.unit_id = batch_unit.id
                    queued.append(batch_unit)
                retried += len(again)
            if not retried:
                return 0
            record.state, record.finished_at = RunState.RUNNING, None
            record.error_message = record.error_ref = record.error_traceback = None
            record.cancel_requested = False
            record.cancel_requested_at = record.cancel_requested_by = None
            record.interrupted_step = None
            note = f"retrying {retried} failed batch{'es' if retried != 1 else ''}"
            self._log(run, [(time.time(), "", "system", note)])
        self._queued_now(queued)
        return retried

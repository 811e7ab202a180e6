"""The SQL store with map steps: the policy of :class:`~gristmill.store.sql.policy.SqlPolicy`
plus cutting a map into batches, ending a batch and counting the map down, reading a map's
status and findings, and retrying failed batches (see :mod:`gristmill.store.base`).

Each operation is one transaction of named statements. The remaining counter is decremented
with ``remaining = remaining - 1``, and the walk after the last batch is queued by an
``INSERT ... SELECT`` that only finds a row when that counter is at zero: the row lock that
the decrement takes (PostgreSQL), or SQLite's one writer at a time, makes exactly one batch the
last, without counting rows.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any

from gristmill.errors import StoreUnavailableError
from gristmill.states import FINAL_RUN_STATES, BatchState, RunState, UnitKind, UnitState
from gristmill.store.maps import BatchRow, MapRow, lost_batch_message, status
from gristmill.store.records import (
    MAX_EXAMPLES,
    MAX_FAILED_ITEMS,
    BatchOutcome,
    BatchRecord,
    BatchSpec,
    Claim,
    FindingRecord,
    MapStatus,
    NewMap,
    NextClaim,
    Report,
)
from gristmill.store.sql.columns import run_id_of
from gristmill.store.sql.dialect import Fence, Many
from gristmill.store.sql.policy import SqlPolicy, _states
from gristmill.store.sql.queries import QUERIES as Q

_QUEUED, _CLAIMED, _DONE = UnitState.QUEUED.value, UnitState.CLAIMED.value, UnitState.DONE.value
_RUN, _BATCH = UnitKind.RUN.value, UnitKind.BATCH.value
_PENDING, _BATCH_DONE = BatchState.PENDING.value, BatchState.DONE.value
_RUNNING = RunState.RUNNING.value
_DELETE_MAP = [
    Q["delete_map_rows"].format(table=t)
    for t in ("gristmill_finding", "gristmill_batch", "gristmill_map")
]
_RETRY, _RETRYABLE = _states(Q["retry_run"], sorted(FINAL_RUN_STATES))
_DECODED: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}
"""A batch row's counts, examples and failed items decoded, by their stored JSON texts (so
exact whatever wrote them): a map's status is read twice a second while it runs, and its
ended batches do not change. Read only (:func:`~gristmill.store.maps.status` copies what it
hands out); emptied when it reaches :data:`_DECODED_LIMIT` entries."""

_DECODED_LIMIT = 50_000

_FINDINGS = Q["read_findings"].format(kind="")
_FINDINGS_OF_KIND = Q["read_findings"].format(kind=" AND kind = %s")


class SqlStore(SqlPolicy):
    """A :class:`~gristmill.store.base.Store` on a SQL database: SQLite or PostgreSQL, the
    dialect chosen by the connection source's vendor (see
    :class:`~gristmill.store.sql.connection.SqlConnection`)."""

    def _announce(self, query: str, params: Sequence[Any]) -> None:
        """After a commit that queued units: ring the work doorbell, or tell the bell which
        units ``query`` finds queued (if it cannot be read now, the reconciler sends them)."""
        rows: Sequence[Sequence[Any]] = []
        if self.bell is not None:
            with contextlib.suppress(StoreUnavailableError):
                rows = self._fetch(query, list(params))
        self._queued(rows)

    def _walk_after(self, key: Any, step: str) -> list[Any]:
        notify = []
        if self.sql.supports_notify:
            notify = [(Q["notify_if_map_done"], ["gristmill_work", "", key, step])]
        return [(Q["queue_walk"], [_RUN, _QUEUED, _RUN, key, step, _RUNNING]), *notify]

    def start_map(
        self,
        claim: Claim,
        new_map: NewMap,
        report: Report,
        *,
        then_claim: NextClaim | None = None,
    ) -> bool:
        key = self._id(claim.run_id)
        step = new_map.step
        rows = self._fetch(Q["latest_max_attempts"], [key])
        max_attempts = rows[0][0] if rows else 3
        batches = [
            (key, step, b.number, _PENDING, b.first_item, b.items, b.source, b.start, b.end)
            for b in new_map.batches
        ]
        total = len(new_map.batches)
        parts: list[Any] = [
            self._fence(claim, None, UnitState.DONE),
            (Q["end_map_units"], [_DONE, key, key, step]),
            *((delete, [key, step]) for delete in _DELETE_MAP),
            (
                Q["create_map"],
                [
                    key,
                    step,
                    new_map.position,
                    new_map.on_failure,
                    json.dumps(new_map.fingerprint),
                    total,
                    total,
                    new_map.items_total,
                    False,
                ],
            ),
            Many(Q["create_batch"], batches),
            (
                Q["queue_batch_units"],
                [_BATCH, _QUEUED, max_attempts, key, step, _PENDING],
            ),
            *self._report(key, report),
            *self._walk_after(key, step),
            *self._notify("gristmill_work"),
        ]
        if not self._write(*parts, then_claim=then_claim):
            return False
        self._announce(Q["queued_units_of_run"], [key, _QUEUED])
        return True

    def load_batch(self, claim: Claim) -> BatchRecord | None:
        rows = self._fetch(Q["load_batch"], ["fail", BatchState.FAILED.value, claim.unit_id])
        if not rows:
            return None
        key, step, total, number, first, items, source, start, end, failed = rows[0]
        spec = BatchSpec(number, first, items, source, start, end)
        return BatchRecord(run_id_of(key), step, total, spec, bool(failed))

    def save_batch(
        self,
        claim: Claim,
        outcome: BatchOutcome,
        report: Report,
        *,
        then_claim: NextClaim | None = None,
    ) -> bool:
        key = self._id(claim.run_id)
        step, number = outcome.step, outcome.number
        total = outcome.batches_total
        findings = [(key, step, number, item, kind, text) for item, kind, text in outcome.findings]
        examples = {kind: list(found)[:MAX_EXAMPLES] for kind, found in outcome.examples.items()}
        parts: list[Any] = [
            self._fence(claim, None, UnitState.DONE),
            (Q["delete_batch_findings"], [key, step, number, claim.unit_id, _PENDING]),
            Many(Q["add_finding"], findings),
            (
                Q["end_batch"],
                [
                    outcome.state.value,
                    outcome.items_done,
                    outcome.items_failed,
                    json.dumps(dict(outcome.counts)),
                    json.dumps(examples),
                    json.dumps(list(outcome.failed_items)[:MAX_FAILED_ITEMS]),
                    outcome.error,
                    claim.unit_id,
                ],
            ),
            (Q["count_down"], [outcome.items_done, key, step]),
            (
                Q["map_progress"],
                [step, f"batch {number} of {total}", key, step, key, step, key, _RUNNING],
            ),
            self._logs(key, report.logs),
            *self._walk_after(key, step),
        ]
        if not self._write(*parts, then_claim=then_claim):
            return False
        self._announce(Q["queued_walk_of_run"], [key, _RUN, _QUEUED])
        return True

    def _max_attempts(self, key: Any) -> int:
        rows = self._fetch(Q["latest_max_attempts"], [key])
        return int(rows[0][0]) if rows else 3

    def _lose_batch(self, unit: Sequence[Any], reason: str, failures: int, give_up: bool) -> bool:
        unit_id, run_key, attempt = unit[0], unit[1], unit[2]
        fence = Fence(
            Q["lose_unit"],
            [_DONE if give_up else _QUEUED, failures, reason, unit_id, attempt, _CLAIMED],
        )
        if not give_up:
            note = f"batch unit attempt {attempt} lost: worker lost ({reason}); retrying"
            parts = [self._logs(run_key, [(time.time(), "", "system", note)])]
            if not self._write(fence, *parts, *self._notify("gristmill_work")):
                return False
            self._announce(Q["queued_unit"], [unit_id, _QUEUED])
            return True
        found = self._fetch(Q["batch_of_unit"], [unit_id])
        if not found:
            return self._write(fence)
        step, number = found[0]
        message = lost_batch_message(reason, attempt, failures)
        line = (time.time(), step, "system", f"batch {number} failed: {message}")
        if not self._write(
            fence,
            (Q["delete_batch_findings"], [run_key, step, number, unit_id, _PENDING]),
            (
                Q["fail_lost_batch"],
                [BatchState.FAILED.value, message, unit_id],
            ),
            (Q["count_down"], [0, run_key, step]),
            self._logs(run_key, [line]),
            *self._walk_after(run_key, step),
        ):
            return False
        self._announce(Q["queued_walk_of_run"], [run_key, _RUN, _QUEUED])
        return True

    def map_status(self, run_id: str) -> list[MapStatus]:
        key = self._id(run_id)
        maps = self._fetch(Q["maps_of_run"], [key])
        if not maps:
            self._exists(run_id)
            return []
        batches: dict[str, list[BatchRow]] = {}
        decoded = _DECODED
        for row in self._fetch(Q["batches_of_run"], [key]):
            step, number, first, items, state, done, failed, counts, examples, listed, error = row
            texts = (counts, examples, listed)
            found = decoded.get(texts)
            if found is None:
                if len(decoded) >= _DECODED_LIMIT:
                    decoded.clear()
                found = decoded[texts] = (
                    json.loads(counts),
                    json.loads(examples),
                    json.loads(listed),
                )
            batches.setdefault(step, []).append(
                BatchRow(number, first, items, state, done, failed, *found, error)
            )
        out = []
        for step, position, on_failure, fingerprint, *numbers, settled in maps:
            generation, batches_total, remaining, items_total, items_done = numbers
            stored = MapRow(
                step,
                position,
                on_failure,
                json.loads(fingerprint),
                generation,
                batches_total,
                remaining,
                items_total,
                items_done,
                bool(settled),
            )
            out.append(status(stored, batches.get(step, [])))
        return out

    def read_findings(
        self,
        run_id: str,
        step: str,
        *,
        after: int = 0,
        limit: int = 1000,
        kind: str | None = None,
    ) -> list[FindingRecord]:
        key = self._id(run_id)
        after = max(0, min(int(after), 2**63 - 1))
        limit = max(1, min(int(limit), 10_000))
        if kind is None:
            sql, params = _FINDINGS, [key, step, after, key, step, after, limit]
        else:
            sql = _FINDINGS_OF_KIND
            params = [key, step, after, kind, key, step, after, kind, limit]
        rows = self._fetch(sql, params)
        if not rows:
            self._exists(run_id)
        return [FindingRecord(item, batch, k, json.loads(text)) for item, batch, k, text in rows]

    def retry_failed_batches(self, run_id: str) -> int:
        key = self._id(run_id)
        unfinished = self._fetch(Q["unfinished_batches"], [key, _BATCH_DONE])
        if not unfinished:
            self._exists(run_id)
            return 0
        max_attempts = self._max_attempts(key)
        parts: list[Any] = [Fence(_RETRY, [_RUNNING, False, key, *_RETRYABLE])]
        retried = 0
        for step, count, items_done in unfinished:
            retried += count
            parts += [
                (Q["delete_unfinished_findings"], [key, step, key, step, _BATCH_DONE]),
                (Q["reopen_map"], [count, items_done, False, key, step]),
                (Q["reset_batches"], [_PENDING, key, step, _BATCH_DONE]),
                (Q["queue_batch_units"], [_BATCH, _QUEUED, max_attempts, key, step, _PENDING]),
            ]
        note = f"retrying {retried} failed batch{'es' if retried != 1 else ''}"
        parts += [
            self._logs(key, [(time.time(), "", "system", note)]),
            *self._notify("gristmill_work"),
        ]
        if not self._write(*parts):
            return 0
        self._announce(Q["queued_units_of_run"], [key, _QUEUED])
        return int(retried)

"""Run one claimed batch unit: a map step's item function over one batch of its items.

The batch is read from its byte range (or its spill file), each item is checked, and the batch
ends in one fenced write (:meth:`~gristmill.store.base.Store.save_batch`): its findings
replace any stored for it, its counts and examples are recorded, and the map's remaining
counter goes down by one. A cancel, a time limit, a drain and a lost lease stop the batch
between items as they stop a step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from gristmill.authoring.maps import MapTask
from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.registry import Registry
from gristmill.engine.mapping import read_batch
from gristmill.engine.planner import RunView
from gristmill.engine.watchdog import UnitReporter
from gristmill.errors import CancelledError, NotFoundError, TaskError
from gristmill.states import BatchState, RunState, StopReason
from gristmill.storage import Storage
from gristmill.store.base import Store
from gristmill.store.records import (
    CANCELLED_MESSAGE,
    MAX_EXAMPLES,
    MAX_FAILED_ITEMS,
    BatchOutcome,
    BatchRecord,
    Claim,
    Failure,
    NextClaim,
    Report,
)

logger = logging.getLogger("gristmill.engine")


class _Stopped(Exception):
    def __init__(self, reason: StopReason):
        self.reason = reason


def _message(error: BaseException) -> str:
    if isinstance(error, TaskError):
        return error.message
    return f"{type(error).__name__}: {error}"


def _findings(step: str, item: int, value: Any) -> list[tuple[str, str, Any]]:
    """``(kind, JSON, finding)`` of what the item function returned; a TaskError if it is not
    a finding, a list of findings or None."""
    if value is None:
        return []
    found = value if isinstance(value, list) else [value]
    out = []
    for finding in found:
        if not isinstance(finding, dict) or not isinstance(finding.get("kind"), str):
            raise TaskError(
                f"step `{step}` returned {type(finding).__name__} for item {item}; return "
                'None, a finding (a dict with a "kind" string) or a list of findings'
            )
        try:
            text = json.dumps(finding, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TaskError(
                f"a finding of step `{step}` for item {item} cannot be stored as JSON: {error}"
            ) from None
        out.append((finding["kind"], text, finding))
    return out


class BatchRunner:
    """Executes claimed batch units in this process (one per worker)."""

    def __init__(self, store: Store, registry: Registry, storage: Storage):
        self.store = store
        self.registry = registry
        self.storage = storage

    def task_of(self, record: BatchRecord, pipeline: Pipeline) -> MapTask:
        for task in pipeline.steps:
            if task.step_name == record.step and isinstance(task, MapTask):
                return task
        raise NotFoundError(f"pipeline {pipeline.name!r} has no map step {record.step!r}")

    def run(
        self,
        claim: Claim,
        reporter: UnitReporter,
        persist: Callable[[Callable[[Report], bool]], bool],
        started: Callable[[float | None], None],
        then_claim: NextClaim | None,
    ) -> RunState | None:
        """Run the batch; ``persist`` writes with retries through outages (the runner's),
        ``started`` starts the time limit. Returns ``RUNNING`` when the batch was saved, the
        run's end state when it ended the run, ``None`` if fenced out."""
        record = self.store.load_batch(claim)
        if record is None:
            return None  # its map was replaced: the unit was ended with it
        run, _ = self.store.load(claim)
        if run.cancel_requested:
            failure = Failure(CANCELLED_MESSAGE, step=record.step)
            return self._finish(claim, persist, RunState.CANCELLED, failure, then_claim)
        try:
            pipeline = self.registry.get(run.pipeline)
            task = self.task_of(record, pipeline)
        except NotFoundError as error:
            outcome = self._failed(record, 0, str(error))
            return self._save(claim, persist, outcome, then_claim)
        if record.map_failed:
            skipped = BatchOutcome(
                record.step,
                record.spec.number,
                BatchState.SKIPPED,
                0,
                error="not run: another batch of the step failed",
                batches_total=record.batches_total,
            )
            return self._save(claim, persist, skipped, then_claim)
        reporter.begin_step(record.step)
        view = RunView(pipeline, run, self.storage, self.store, fetch=True)  # ancestor: lazily
        context = view.context(task, {}, attempt=claim.attempt, reporter=reporter)
        started(task.timeout or pipeline.step_timeout)
        try:
            outcome = self._check(task, record, context, reporter)
        except _Stopped as stop:
            if stop.reason == StopReason.CANCELLED:
                failure = Failure(CANCELLED_MESSAGE, step=record.step)
                return self._finish(claim, persist, RunState.CANCELLED, failure, then_claim)
            if stop.reason == StopReason.DRAIN:
                self.store.release(claim, reporter.take())
                return None
            if stop.reason == StopReason.LOST:
                return None
            limit = task.timeout or pipeline.step_timeout
            outcome = self._failed(
                record, 0, f"batch {record.spec.number} ran past its time limit of {limit:g} s"
            )
        except Exception as error:  # unreadable items: the whole batch failed
            outcome = self._failed(record, 0, _message(error))
        finally:
            started(None)
        return self._save(claim, persist, outcome, then_claim)

    def _check(
        self, task: MapTask, record: BatchRecord, context: Any, reporter: UnitReporter
    ) -> BatchOutcome:
        spec = record.spec
        step = record.step
        findings: list[tuple[int, str, str]] = []
        counts: dict[str, int] = {}
        examples: dict[str, list[Any]] = {}
        failed: list[tuple[int, str]] = []
        items_failed = 0
        done = 0
        lines, loads = read_batch(self.storage, spec)
        check = task.check  # the hot loop: one look-up each, not per item
        item = spec.first_item - 1
        for line in lines:
            if reporter.cancel_reason is not None:
                raise _Stopped(reporter.cancel_reason)
            item += 1
            done += 1
            if not line or line.isspace():
                continue
            try:
                value = check(loads(line), context)
                if value is None:
                    continue
                found = _findings(step, item, value)
            except CancelledError:
                raise _Stopped(reporter.cancel_reason or StopReason.CANCELLED) from None
            except Exception as error:
                message = f"item {item}: {_message(error)}"
                if task.on_failure == "fail":
                    return self._failed(record, done, message, [(item, _message(error))])
                items_failed += 1
                if len(failed) < MAX_FAILED_ITEMS:
                    failed.append((item, _message(error)))
                continue
            for kind, text, finding in found:
                findings.append((item, kind, text))
                counts[kind] = counts.get(kind, 0) + 1
                kept = examples.setdefault(kind, [])
                if len(kept) < MAX_EXAMPLES:
                    kept.append(finding)
        if reporter.cancel_reason is not None:
            raise _Stopped(reporter.cancel_reason)
        return BatchOutcome(
            step,
            spec.number,
            BatchState.DONE,
            done,
            findings,
            counts,
            examples,
            items_failed,
            failed,
            batches_total=record.batches_total,
        )

    def _failed(
        self,
        record: BatchRecord,
        done: int,
        error: str,
        failed_items: list[tuple[int, str]] | None = None,
    ) -> BatchOutcome:
        return BatchOutcome(
            record.step,
            record.spec.number,
            BatchState.FAILED,
            done,
            items_failed=len(failed_items or ()),
            failed_items=failed_items or [],
            error=error,
            batches_total=record.batches_total,
        )

    def _save(
        self,
        claim: Claim,
        persist: Callable[[Callable[[Report], bool]], bool],
        outcome: BatchOutcome,
        then_claim: NextClaim | None,
    ) -> RunState | None:
        def save(report: Report) -> bool:
            return self.store.save_batch(claim, outcome, report, then_claim=then_claim)

        return RunState.RUNNING if persist(save) else None

    def _finish(
        self,
        claim: Claim,
        persist: Callable[[Callable[[Report], bool]], bool],
        state: RunState,
        failure: Failure,
        then_claim: NextClaim | None,
    ) -> RunState | None:
        def finish(report: Report) -> bool:
            return self.store.finish(claim, state, report, failure, then_claim=then_claim)

        return state if persist(finish) else None

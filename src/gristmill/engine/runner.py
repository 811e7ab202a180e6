"""Run one claimed unit: bring a run up to date, step by step, persisting as it goes.

Steps run back to back in this process (a step with ``network=False`` runs its ``process`` in a
forked child, see :mod:`gristmill.authoring.isolation`), so upstream results are already in
memory. Each step's result is persisted before the next starts; a step whose stored result is
still current is reused, not recomputed. Every write is fenced by the claim's attempt number, so
an attempt whose lease was taken over stops without publishing anything.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from gristmill.authoring.commands import Command
from gristmill.authoring.context import OutputFile, RunContext
from gristmill.authoring.fingerprints import Fingerprint
from gristmill.authoring.isolation import call_without_network
from gristmill.authoring.logcontrol import step_logging
from gristmill.authoring.maps import MapTask
from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.registry import Registry
from gristmill.authoring.tasks import Task
from gristmill.engine import mapping
from gristmill.engine.batches import BatchRunner
from gristmill.engine.ends import PendingEnds
from gristmill.engine.fetching import fetch_inputs
from gristmill.engine.filtering import filter_inputs
from gristmill.engine.outage import Outage
from gristmill.engine.planner import RunView, output_files, previous_result, upstream_token
from gristmill.engine.watchdog import UnitReporter, Watchdog
from gristmill.errors import (
    CancelledError,
    InternalErrorRef,
    NotFoundError,
    StepTimeoutError,
    StoreUnavailableError,
    TaskError,
)
from gristmill.logfields import about
from gristmill.states import RunState, StepState, StopReason, UnitKind
from gristmill.storage import Storage
from gristmill.store.base import Store
from gristmill.store.records import (
    CANCELLED_MESSAGE,
    Claim,
    Failure,
    MapStatus,
    NewMap,
    NextClaim,
    OutputRecord,
    Report,
    RunRecord,
    StepEnd,
    StepOutcome,
)

logger = logging.getLogger("gristmill.engine")

T = TypeVar("T")


class _Fenced(Exception):
    """The claim was taken over; stop without writing."""


class _Abandoned(Exception):
    """The worker is stopping while the database is unavailable: the attempt is left to run out
    its lease and be retried, as if the worker had died."""


class _Handed(Exception):
    """A map step was cut into batches: the run's unit ended, the run goes on in them."""


class _NotJSON(TypeError):
    pass


def _refuse(value: Any) -> Any:
    raise _NotJSON(type(value).__name__)


def to_json(step: str, result: Any) -> str:
    """Serialise a step result; a :class:`TaskError` naming the step and the type if it
    cannot be stored as JSON."""
    try:
        return json.dumps(result, default=_refuse, allow_nan=False, separators=(",", ":"))
    except _NotJSON as error:
        raise TaskError(
            f"step `{step}` returned a value of type {error.args[0]}, which cannot be stored "
            "as JSON; return dicts, lists, strings, numbers, booleans or None"
        ) from None
    except ValueError as error:  # NaN / infinity, or a circular reference
        raise TaskError(
            f"step `{step}` returned a value that cannot be stored as JSON: {error}"
        ) from None


@dataclass
class _Step:
    task: Task
    position: int
    context: RunContext
    fingerprint: Fingerprint
    started: float = 0.0
    outputs: tuple[OutputFile, ...] | None = None
    """The files the step registered, when it ran (``None`` when its result was reused)."""


class UnitRunner:
    """Executes claimed units in this process. One per worker; not thread-safe."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        storage: Storage,
        *,
        watchdog: Watchdog,
        lease: float,
        outage: Outage | None = None,
        fetch_timeout: float = 30.0,
        fetch_allow: tuple[str, ...] = (),
    ):
        """``outage`` is the process's record of database outages (shared with the worker
        loop, so that each outage is logged once)."""
        self.outage = outage or Outage(logger)
        self.store = store
        self.registry = registry
        self.storage = storage
        self.watchdog = watchdog
        self.lease = lease
        self.fetch_timeout = fetch_timeout
        self.fetch_allow = fetch_allow
        self._then_claim: NextClaim | None = None
        self.batches = BatchRunner(store, registry, storage)
        self.keep_ends: PendingEnds | None = None
        """Where the next run's last step goes instead of being written, when set (the
        worker writes it with others: :mod:`gristmill.engine.ends`)."""

    def run(self, claim: Claim, then_claim: NextClaim | None = None) -> RunState | None:
        """Execute ``claim``; return the state the run was ended with, or ``None`` if fenced
        out. (A cancel requested before that write wins in the store: the run is then
        ``cancelled`` whatever this says.)

        With ``then_claim``, the write that ends the unit also claims the worker's next unit(s)
        into ``then_claim.claims``.
        """
        reporter = UnitReporter()
        self._then_claim = then_claim
        self.watchdog.watch(claim, reporter)
        try:
            if claim.kind == UnitKind.BATCH:
                return self._batch(claim, reporter)
            return self._run(claim, reporter)
        except _Handed:
            return RunState.RUNNING
        except _Fenced:
            logger.warning(
                "attempt %s of run %s was taken over; its work is discarded",
                claim.attempt,
                claim.run_id,
            )
            return None
        except _Abandoned:
            logger.warning(
                "attempt %s of run %s left unsaved: the worker is stopping while the database "
                "is unavailable; it will be retried",
                claim.attempt,
                claim.run_id,
            )
            return None
        finally:
            self._then_claim = None
            self.watchdog.unwatch()

    def _batch(self, claim: Claim, reporter: UnitReporter) -> RunState | None:
        reporter.status = False  # the run's status is its map's, written by each batch's end

        def persist(write: Callable[[Report], bool]) -> bool:
            return self._persist(reporter, write)

        state = self.batches.run(
            claim, reporter, persist, self.watchdog.step_started, self._then_claim
        )
        if state is None:
            raise _Fenced()
        return state

    def _run(self, claim: Claim, reporter: UnitReporter) -> RunState | None:
        # Nothing is reported before the load: the report it is handed is empty.
        run, stored = self._persist(reporter, lambda report: self.store.load(claim))
        try:
            pipeline = self.registry.get(run.pipeline)
        except NotFoundError:
            return self._end(
                claim,
                reporter,
                RunState.FAILED,
                Failure(f"pipeline {run.pipeline!r} is not offered by this server any more"),
            )
        if run.cancel_requested:
            return self._end(claim, reporter, RunState.CANCELLED, Failure(CANCELLED_MESSAGE))
        maps: dict[str, MapStatus] | None = None
        if claim.attempt > 1:
            if any(isinstance(task, MapTask) for task in pipeline.steps):
                maps = {m.step: m for m in self.store.map_status(claim.run_id)}
            ended = [m.step for m in (maps or {}).values() if m.complete and not m.settled]
            if ended:
                reporter.log(f"all batches of `{ended[0]}` ended; continuing", "system")
            else:
                reporter.log(f"attempt {claim.attempt} starting", "system")
        if any(record.awaiting_fetch for record in run.inputs):
            try:
                run = self._fetch_inputs(claim, reporter, pipeline, run)
            except _Fenced:
                raise
            except Exception as error:
                failure = (
                    Failure(error.message)
                    if isinstance(error, TaskError)
                    else _internal(error, f"fetching the inputs of run {claim.run_id}")
                )
                reporter.log(f"fetching the inputs failed: {failure.message}", "system")
                return self._end(claim, reporter, RunState.FAILED, failure)
        try:  # the inputs, fetched into this machine's cache from a remote storage
            view = RunView(
                pipeline,
                run,
                self.storage,
                self.store,
                maps=mapping.StoreMapResults(self.store, claim.run_id),
                fetch=True,
            )
        except FileNotFoundError as error:
            missing = Path(error.filename or str(error)).name
            failure = Failure(f"an input of this run is not stored any more: {missing}")
            reporter.log(f"fetching the inputs failed: {failure.message}", "system")
            return self._end(claim, reporter, RunState.FAILED, failure)
        results: dict[str, Any] = {}
        tokens: dict[str, str] = {}
        files: dict[str, tuple[OutputFile, ...]] = {}
        last = len(pipeline.steps) - 1
        for position, task in enumerate(pipeline.steps):
            if reporter.cancel_reason == StopReason.CANCELLED:
                # Asked to stop during the step before: the steps after it never start.
                return self._end(claim, reporter, RunState.CANCELLED, Failure(CANCELLED_MESSAGE))
            name = task.step_name
            reporter.begin_step(name)
            context = view.context(
                task, results, attempt=claim.attempt, reporter=reporter, files=files
            )
            fingerprint = view.fingerprint(task, tokens, files)
            step = _Step(task, position, context, fingerprint)
            final = RunState.SUCCEEDED if position == last else None
            try:
                finished = None
                if isinstance(task, MapTask):
                    if maps is None:
                        maps = {m.step: m for m in self.store.map_status(claim.run_id)}
                    finished = self._finished_map(claim, reporter, step, maps.get(name), final)
                if finished is not None:
                    state, result, in_force, wrote = finished
                else:
                    state, result, in_force, wrote = self._step(
                        claim, reporter, pipeline, step, stored.get(name), final
                    )
            except (TaskError, Exception) as error:
                return self._fail(claim, reporter, pipeline, step, error)
            results[name] = result
            tokens[name] = upstream_token(state, in_force, map_generation(task, result))
            files[name] = self._files_of(step, state, stored.get(name))
            if wrote and final is not None:
                return final
        return self._end(claim, reporter, RunState.SUCCEEDED, None)

    def _files_of(self, step: _Step, state: str, stored: Any) -> tuple[OutputFile, ...]:
        """The output files later steps see of a step: those it registered if it ran, those
        stored with its result if that was reused, none if it was skipped."""
        if state == StepState.SKIPPED:
            return ()
        if step.outputs is not None:
            return step.outputs
        if stored is None:
            return ()
        return output_files(stored.outputs, self.storage, fetch=True)

    def _fetch_inputs(
        self, claim: Claim, reporter: UnitReporter, pipeline: Pipeline, run: RunRecord
    ) -> RunRecord:
        """The run with its URL inputs fetched and its items inputs written, and recorded (see
        :mod:`.fetching` and :mod:`.filtering`)."""

        def log(line: str) -> None:
            reporter.log(line, "system")

        fetched = fetch_inputs(
            run,
            pipeline,
            self.storage,
            timeout=self.fetch_timeout,
            allow=self.fetch_allow,
            log=log,
        )
        fetched.update(filter_inputs(run, pipeline, self.store, self.registry, self.storage, log))

        def save(report: Report) -> bool:
            return self.store.save_inputs(claim, fetched, report, lease=self.lease)

        def saved() -> bool | None:
            stored = self.store.get_run(claim.run_id).inputs
            same = all(stored[p].path == record.path for p, record in fetched.items())
            return True if same else None

        if not self._persist(reporter, save, saved):
            raise _Fenced()
        inputs = [fetched.get(position, record) for position, record in enumerate(run.inputs)]
        return replace(run, inputs=inputs)

    def _step(
        self,
        claim: Claim,
        reporter: UnitReporter,
        pipeline: Pipeline,
        step: _Step,
        stored: Any,
        final: RunState | None,
    ) -> tuple[str, Any, Fingerprint, bool]:
        task, name = step.task, step.task.step_name
        started = step.started = time.time()
        if not task.is_applicable(step.context):
            if stored is not None and stored.state == StepState.SKIPPED:
                return StepState.SKIPPED, None, step.fingerprint, False
            self._save(
                claim,
                reporter,
                StepOutcome(
                    name,
                    step.position,
                    StepState.SKIPPED,
                    None,
                    step.fingerprint.to_dict(),
                    started,
                    time.time(),
                ),
                final,
            )
            return StepState.SKIPPED, None, step.fingerprint, final is not None
        previous = None
        if stored is not None and stored.state == StepState.SUCCEEDED:
            previous = previous_result(task, stored, step.fingerprint)
        if previous is not None and not task.is_needed(step.context, previous):
            return StepState.SUCCEEDED, previous.result, previous.fingerprint, False
        if previous is not None and previous.stale_reasons:
            reporter.log(f"recomputing: {'; '.join(previous.stale_reasons)}", "system")
        step.context.workdir = functools.partial(
            self.storage.work_dir, claim.run_id, claim.attempt, name
        )
        if isinstance(task, MapTask):
            self._start_map(claim, reporter, step)
        self.watchdog.step_started(task.timeout or pipeline.step_timeout)
        try:
            with about(step=name), step_logging(step.context, task):
                result = self._process(task, step.context)
        except CancelledError:
            if reporter.cancel_reason == StopReason.TIMEOUT:
                limit = task.timeout or pipeline.step_timeout
                raise StepTimeoutError(
                    f"step `{name}` ran past its time limit of {limit:g} s"
                ) from None
            raise
        finally:
            self.watchdog.step_started(None)
        if reporter.cancel_reason == StopReason.LOST:
            raise _Fenced()
        if reporter.cancel_reason == StopReason.TIMEOUT:
            # The step noticed its time limit late but returned a result: keep it, and do not
            # let the next step start out cancelled.
            reporter.clear_cancel()
        result_json = to_json(name, result)
        step.outputs = step.context.outputs
        outputs = [
            # Kept (uploaded to a remote storage) before the row that names them commits.
            OutputRecord(name, o.name, self.storage.keep(o.path), o.size, o.sha256, o.media_type)
            for o in step.context.outputs
        ]
        self._save(
            claim,
            reporter,
            StepOutcome(
                name,
                step.position,
                StepState.SUCCEEDED,
                result_json,
                step.fingerprint.to_dict(),
                started,
                time.time(),
                outputs=outputs,
                replaces_outputs=stored is not None,
            ),
            final,
        )
        if stored is not None:
            self.storage.drop_other_attempts(claim.run_id, claim.attempt, name)
        return StepState.SUCCEEDED, result, step.fingerprint, final is not None

    def _finished_map(
        self,
        claim: Claim,
        reporter: UnitReporter,
        step: _Step,
        status: MapStatus | None,
        final: RunState | None,
    ) -> tuple[str, Any, Fingerprint, bool] | None:
        """The map step's outcome if its batches have all ended since the last walk (under
        the same fingerprint); ``None`` if the map is to be (re)started or reused."""
        if status is None or not status.complete or status.settled:
            return None
        if Fingerprint.from_dict(status.fingerprint).digest != step.fingerprint.digest:
            return None
        assert isinstance(step.task, MapTask)
        message = mapping.failure_message(step.task, status)
        if message is not None:
            raise TaskError(message)
        result = mapping.summary(status)
        name = step.task.step_name
        now = time.time()
        outcome = StepOutcome(
            name,
            step.position,
            StepState.SUCCEEDED,
            to_json(name, result),
            step.fingerprint.to_dict(),
            now,
            now,
        )
        self._save(claim, reporter, outcome, final)
        return StepState.SUCCEEDED, result, step.fingerprint, final is not None

    def _start_map(self, claim: Claim, reporter: UnitReporter, step: _Step) -> None:
        """Cut the map step into batches, hand them to the store and end this unit."""
        task = step.task
        assert isinstance(task, MapTask)
        name = task.step_name
        spill = self.storage.work_dir(claim.run_id, claim.attempt, name) / "batches"
        items, batches = mapping.split(task, step.context, self.storage, spill)
        reporter.log(
            f"{items} items in {len(batches)} batches of up to {task.batch_size}", "system"
        )
        new_map = NewMap(
            name, step.position, step.fingerprint.to_dict(), task.on_failure, items, batches
        )
        then_claim = self._then_claim

        def start(report: Report) -> bool:
            report.current_step, report.stage = name, f"batch 0 of {len(batches)}"
            report.progress_done, report.progress_total = 0, items
            return self.store.start_map(claim, new_map, report, then_claim=then_claim)

        if not self._persist(reporter, start):
            raise _Fenced()
        raise _Handed()

    @staticmethod
    def _process(task: Task, context: RunContext) -> Any:
        """``task.process``, in a child process without network if the task says so (a
        command cuts off its own tool)."""
        if task.network or isinstance(task, Command):
            return task.process(context, context.upstream)
        return call_without_network(
            context,
            functools.partial(task.process, context, context.upstream),
            functools.partial(to_json, task.step_name),
        )

    def _persist(
        self,
        reporter: UnitReporter,
        attempt: Callable[[Report], T],
        committed: Callable[[], T | None] = lambda: None,
    ) -> T:
        """Run ``attempt`` (a database operation for the claim, given the reporter's pending
        report) until the database takes it.

        A lost connection is not the run's fault: while the database is unavailable, back off
        and try again. Before each new try, ``committed()`` says whether the last one was
        committed all the same (its answer was lost with the connection): if it returns a
        result, that is the outcome, and nothing is written twice. Raises :class:`_Abandoned`
        if the worker starts stopping first, :class:`_Fenced` if the claim is found taken over
        meanwhile.
        """
        report: Report | None = None
        while True:
            try:
                with reporter.write_lock:
                    # After a failed try, the write may have committed all the same.
                    result = None if report is None else committed()
                    if report is None:
                        report = reporter.take()
                    if result is None:
                        # The store consumes the lines it is given: each try gets a copy.
                        result = attempt(replace(report, logs=list(report.logs)))
            except StoreUnavailableError as error:
                delay = self.outage.failed(error)
            else:
                self.outage.recovered()
                return result
            if reporter.cancel_reason == StopReason.DRAIN:
                raise _Abandoned()
            if reporter.cancel_reason == StopReason.LOST:
                raise _Fenced()
            # Not a synchronisation: the database is polled until it answers, backing off.
            time.sleep(delay)

    def _save(
        self, claim: Claim, reporter: UnitReporter, outcome: StepOutcome, final: RunState | None
    ) -> None:
        if final is not None and self.keep_ends is not None:
            with reporter.write_lock:
                self.keep_ends.add(StepEnd(claim, outcome, reporter.take(), final))
            return
        then_claim = self._then_claim if final is not None else None

        def save(report: Report) -> bool:
            return self.store.save_step(
                claim, outcome, report, lease=self.lease, final=final, then_claim=then_claim
            )

        def saved() -> bool | None:
            step = self.store.get_steps(claim.run_id).get(outcome.name)
            # An attempt writes each step's outcome once: if this attempt's is there, it is
            # this one.
            if step is None or step.attempt != claim.attempt or step.state != outcome.state:
                return None
            self._adopt(then_claim)
            return True

        if not self._persist(reporter, save, saved):
            raise _Fenced()

    def _adopt(self, then_claim: NextClaim | None) -> None:
        # A write that committed although its answer was lost may have claimed the worker's
        # next unit(s) too: take them up, rather than leave them to run out their lease.
        if then_claim is not None:
            known = {claim.unit_id for claim in then_claim.claims}
            held = self.store.held_by(then_claim.worker)
            then_claim.claims.extend(claim for claim in held if claim.unit_id not in known)

    def _fail(
        self,
        claim: Claim,
        reporter: UnitReporter,
        pipeline: Pipeline,
        step: _Step,
        error: BaseException,
    ) -> RunState | None:
        name = step.task.step_name
        state = StepState.FAILED
        run_state = RunState.FAILED
        if isinstance(error, _Fenced | _Abandoned | _Handed):
            raise error
        if isinstance(error, CancelledError) and reporter.cancel_reason == StopReason.LOST:
            raise _Fenced()
        if isinstance(error, CancelledError) and reporter.cancel_reason == StopReason.DRAIN:
            with reporter.write_lock:
                self.store.release(claim, reporter.take())
            return None
        if isinstance(error, CancelledError) and not isinstance(error, StepTimeoutError):
            state, run_state = StepState.CANCELLED, RunState.CANCELLED
            failure = Failure(error.message)
        elif isinstance(error, TaskError):
            # Seen by end users: no server path in it (an input by name, a file run-relative).
            failure = Failure(step.context.curate(error.message))
        else:
            with about(step=name):
                failure = _internal(error, f"step {name} of run {claim.run_id}")
        failure = Failure(failure.message, failure.ref, failure.traceback, step=name)
        reporter.log(f"step `{name}` {state.value}: {failure.message}", "system")
        now = time.time()
        self._save(
            claim,
            reporter,
            StepOutcome(
                name,
                step.position,
                state,
                None,
                step.fingerprint.to_dict(),
                step.started or now,
                now,
                error=failure.message,
            ),
            None,
        )
        return self._end(claim, reporter, run_state, failure)

    def _end(
        self, claim: Claim, reporter: UnitReporter, state: RunState, failure: Failure | None
    ) -> RunState:
        then_claim = self._then_claim

        def finish(report: Report) -> bool:
            return self.store.finish(claim, state, report, failure, then_claim=then_claim)

        def finished() -> bool | None:
            if self.store.get_run(claim.run_id).state != state:
                return None
            self._adopt(then_claim)
            return True

        if not self._persist(reporter, finish, finished):
            raise _Fenced()
        return state


def map_generation(task: Task, result: Any) -> int | None:
    """The generation of a map step's result (it changes when failed batches are retried)."""
    if isinstance(task, MapTask) and isinstance(result, dict):
        generation = result.get("generation")
        return generation if isinstance(generation, int) else None
    return None


def _internal(error: BaseException, where: str) -> Failure:
    """The failure for an unexpected error: logged with its traceback under a reference."""
    internal = InternalErrorRef.log(error, where, logger)
    return Failure(internal.message, ref=internal.reference, traceback=internal.traceback)

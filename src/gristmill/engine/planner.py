"""Which steps of a run are stale, and why, in words a user can read.

The engine uses the same functions while it runs a unit, so that what the results page says
would be recomputed is exactly what a worker recomputes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gristmill.authoring.context import (
    Ancestor,
    AncestorRecord,
    InputFile,
    MapResults,
    OutputFile,
    Reporter,
    RunContext,
)
from gristmill.authoring.fingerprints import Fingerprint, explain_change
from gristmill.authoring.maps import MapTask
from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.tasks import PreviousResult, Task
from gristmill.errors import NotFoundError, TaskError
from gristmill.states import RunState, StepState
from gristmill.storage import Storage
from gristmill.store.base import Store
from gristmill.store.records import InputRecord, OutputRecord, RunRecord, StepRecord

Files = Mapping[str, tuple[OutputFile, ...]]
"""The output files of the steps run so far, by step name."""


def step_fingerprint(
    pipeline: Pipeline,
    task: Task,
    params: Mapping[str, Any],
    upstream_tokens: Mapping[str, str],
    inputs: Sequence[InputRecord],
    files: Files | None = None,
) -> Fingerprint:
    """The fingerprint a result of ``task`` would have for this run now."""
    upstream = pipeline.upstream_of(task)
    files = files or {}
    return Fingerprint(
        task=task.identity,
        code=task.code_fingerprint(),
        version=task.version,
        params={name: params.get(name) for name in pipeline.params_used_by(task)},
        upstream={
            name: upstream_tokens[name]
            for name in pipeline.upstream_of(task)
            if name in upstream_tokens
        },
        inputs=tuple((i.name, i.sha256) for i in inputs),
        files={
            name: tuple((f.name, f.sha256) for f in files[name])
            for name in upstream
            if files.get(name)
        },
        packages=task.package_versions(),
    )


def upstream_token(state: str, fingerprint: Fingerprint, generation: int | None = None) -> str:
    """What downstream fingerprints record of an upstream result (a map step's also says
    which generation of its batches made it: retried batches make the steps after it stale)."""
    if state == StepState.SKIPPED:
        return "skipped"
    return fingerprint.digest if generation is None else f"{fingerprint.digest}.{generation}"


def previous_result(
    task: Task, stored: StepRecord | None, current: Fingerprint
) -> PreviousResult | None:
    """The stored result as a task's ``is_needed`` sees it, with its stale reasons."""
    if stored is None or stored.fingerprint is None:
        return None
    old = Fingerprint.from_dict(stored.fingerprint)
    reasons = explain_change(old, current, task_title=task.title or task.step_name)
    return PreviousResult(stored.state, stored.result, old, tuple(reasons))


def output_files(
    records: Sequence[OutputRecord], storage: Storage, *, fetch: bool = False
) -> tuple[OutputFile, ...]:
    """A stored step's output files as later steps see them; with ``fetch``, fetched into the
    local cache first (a remote storage), for steps that are to read them."""
    where = storage.local_path if fetch else storage.path
    return tuple(OutputFile(o.name, where(o.path), o.size, o.sha256, o.media_type) for o in records)


def input_files(run: RunRecord, storage: Storage, *, fetch: bool = False) -> tuple[InputFile, ...]:
    """The run's inputs as tasks see them; with ``fetch``, fetched into the local cache first
    (skipping inputs still to be fetched from their URLs or filtered from other runs)."""

    def where(record: InputRecord) -> Path:
        if fetch and not record.awaiting_fetch:
            return storage.local_path(record.path)
        return storage.path(record.path)

    return tuple(
        InputFile(i.name, where(i), i.size, i.sha256, i.media_type, i.kind, i.source)
        for i in run.inputs
    )


def ancestor_of(run: RunRecord, store: Store, storage: Storage) -> Ancestor | None:
    """The run's ancestor as its steps see it (read from ``store`` on first use), or None."""
    ancestor_id = run.ancestor_id
    if ancestor_id is None:
        return None

    def load() -> AncestorRecord:
        try:
            ancestor, steps = store.get_run_and_steps(ancestor_id)
        except NotFoundError:
            ancestor = None
        if ancestor is None or ancestor.state == RunState.EXPIRED:
            raise TaskError(
                f"the ancestor run {ancestor_id} has expired: its results and files are gone; "
                "submit this run again with another ancestor, or none"
            )
        outputs = {
            name: output_files(step.outputs, storage, fetch=True) for name, step in steps.items()
        }
        results = {name: step.result for name, step in steps.items()}
        inputs = input_files(ancestor, storage, fetch=True)
        return AncestorRecord(ancestor.pipeline, results, inputs, outputs)

    return Ancestor(ancestor_id, load)


class RunView:
    """A run as its steps see it: validated parameters and input files, ready to make the
    context and the fingerprint of each step. Shared by the planner and the runner.

    With ``store``, steps can read the run's ancestor (``run.ancestor``); without, it is None.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        run: RunRecord,
        storage: Storage,
        store: Store | None = None,
        *,
        maps: MapResults | None = None,
        fetch: bool = False,
    ):
        self.maps = maps
        self.pipeline = pipeline
        self.run = run
        self.storage = storage
        self.params_model = pipeline.params.model_validate(run.params)
        self.params = self.params_model.model_dump(mode="json")
        self.inputs = input_files(run, storage, fetch=fetch)
        self.ancestor = ancestor_of(run, store, storage) if store is not None else None

    def context(
        self,
        task: Task,
        results: Mapping[str, Any],
        *,
        attempt: int = 1,
        reporter: Reporter | None = None,
        files: Files | None = None,
    ) -> RunContext:
        """The run context of ``task``, given the results (and output ``files``) of the steps
        before it."""
        files = files or {}
        return RunContext(
            run_id=self.run.id,
            pipeline=self.pipeline.name,
            step=task.step_name,
            inputs=self.inputs,
            params=self.params_model,
            workdir=self.storage.run_dir(self.run.id),
            upstream={n: results.get(n) for n in self.pipeline.upstream_of(task)},
            attempt=attempt,
            ancestor=self.ancestor,
            reporter=reporter,
            files={n: files[n] for n in self.pipeline.upstream_of(task) if n in files},
            run_root=self.storage.run_dir(self.run.id),
            maps=self.maps,
        )

    def fingerprint(
        self, task: Task, tokens: Mapping[str, str], files: Files | None = None
    ) -> Fingerprint:
        """The fingerprint a result of ``task`` would have now."""
        return step_fingerprint(self.pipeline, task, self.params, tokens, self.run.inputs, files)


@dataclass
class StepPlan:
    """What would happen to one step if the run were brought up to date now."""

    name: str
    applicable: bool
    fingerprint: Fingerprint
    stored: StepRecord | None
    reasons: list[str] = field(default_factory=list)
    """Why the stored result is stale; empty when it is current."""

    @property
    def stale(self) -> bool:
        return bool(self.reasons)


def plan(
    pipeline: Pipeline, run: RunRecord, steps: Mapping[str, StepRecord], storage: Storage
) -> list[StepPlan]:
    """Say, for each step of a finished run, whether its stored result is stale and why.

    Calls only the cheap task methods (``is_applicable``, ``is_needed``); never ``process``.
    """
    view = RunView(pipeline, run, storage)
    results: dict[str, Any] = {}
    tokens: dict[str, str] = {}
    files: dict[str, tuple[OutputFile, ...]] = {}
    plans = []
    for task in pipeline.steps:
        name = task.step_name
        stored = steps.get(name)
        context = view.context(task, results, files=files)
        current = view.fingerprint(task, tokens, files)
        applicable = task.is_applicable(context)
        state = StepState.SUCCEEDED if applicable else StepState.SKIPPED
        reasons: list[str] = []
        if stored is None:
            reasons = ["not computed yet"] if applicable else []
        elif stored.state != state:
            reasons = [
                "the step now applies to this run"
                if applicable
                else "the step no longer applies to this run"
            ]
        elif applicable:
            previous = previous_result(task, stored, current)
            if previous is None or task.is_needed(context, previous):
                reasons = list(previous.stale_reasons) if previous else ["not computed yet"]
                reasons = reasons or ["the task asked to be run again"]
        in_force = current
        if stored is not None and stored.fingerprint is not None and not reasons:
            in_force = Fingerprint.from_dict(stored.fingerprint)
        result = stored.result if stored is not None else None
        generation = result.get("generation") if isinstance(result, dict) else None
        is_map = isinstance(task, MapTask) and isinstance(generation, int)
        tokens[name] = upstream_token(state, in_force, generation if is_map else None)
        results[name] = result
        files[name] = output_files(stored.outputs, storage) if stored is not None else ()
        plans.append(StepPlan(name, applicable, current, stored, reasons))
    return plans

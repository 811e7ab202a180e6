"""Run and step states: which are final, and which moves a run may make."""

from __future__ import annotations

import pytest

from gristmill.runs import RunState, StepState, can_transition


@pytest.mark.parametrize("state", [RunState.QUEUED, RunState.RUNNING])
def test_a_run_that_is_queued_or_running_is_not_terminal(state: RunState) -> None:
    assert not state.is_terminal


@pytest.mark.parametrize(
    "state", [RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.EXPIRED]
)
def test_a_finished_or_expired_run_is_terminal(state: RunState) -> None:
    assert state.is_terminal


@pytest.mark.parametrize("state", [StepState.PENDING, StepState.RUNNING])
def test_a_pending_or_running_step_is_not_terminal(state: StepState) -> None:
    assert not state.is_terminal


@pytest.mark.parametrize(
    "state",
    [StepState.SUCCEEDED, StepState.SKIPPED, StepState.FAILED, StepState.CANCELLED],
)
def test_a_finished_step_is_terminal(state: StepState) -> None:
    assert state.is_terminal


def test_states_are_stored_as_their_lower_case_names() -> None:
    assert RunState("running") is RunState.RUNNING
    assert str(RunState.RUNNING) == "running"


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (RunState.QUEUED, RunState.RUNNING),
        (RunState.QUEUED, RunState.CANCELLED),
        (RunState.RUNNING, RunState.SUCCEEDED),
        (RunState.RUNNING, RunState.FAILED),
        (RunState.RUNNING, RunState.QUEUED),
        (RunState.SUCCEEDED, RunState.QUEUED),
        (RunState.FAILED, RunState.QUEUED),
        (RunState.CANCELLED, RunState.EXPIRED),
    ],
)
def test_allowed_transition(current: RunState, new: RunState) -> None:
    assert can_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (RunState.QUEUED, RunState.SUCCEEDED),
        (RunState.QUEUED, RunState.EXPIRED),
        (RunState.RUNNING, RunState.RUNNING),
        (RunState.RUNNING, RunState.EXPIRED),
        (RunState.SUCCEEDED, RunState.FAILED),
        (RunState.FAILED, RunState.SUCCEEDED),
    ],
)
def test_refused_transition(current: RunState, new: RunState) -> None:
    assert not can_transition(current, new)


@pytest.mark.parametrize("new", list(RunState))
def test_an_expired_run_can_go_nowhere(new: RunState) -> None:
    assert not can_transition(RunState.EXPIRED, new)

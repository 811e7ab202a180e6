"""Run and step states: which are final, and which moves a run may make."""

from __future__ import annotations

import pytest

from gristmill.errors import StoreError
from gristmill.states import (
    EXPIRABLE_RUN_STATES,
    FINAL_RUN_STATES,
    RERUNNABLE_RUN_STATES,
    UNIT_TRANSITIONS,
    RunState,
    StepState,
    StopReason,
    TransitionError,
    UnitKind,
    UnitState,
    can_transition,
    check_run_end,
    run_states_before,
)


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


def test_the_states_a_run_may_be_rerun_or_expired_from_come_from_the_table() -> None:
    assert run_states_before(RunState.QUEUED, among=FINAL_RUN_STATES) == [
        RunState.SUCCEEDED,
        RunState.FAILED,
        RunState.CANCELLED,
    ]
    assert run_states_before(RunState.EXPIRED) == [
        RunState.SUCCEEDED,
        RunState.FAILED,
        RunState.CANCELLED,
    ]
    assert run_states_before(RunState.RUNNING) == [RunState.QUEUED]
    assert (
        RERUNNABLE_RUN_STATES
        == EXPIRABLE_RUN_STATES
        == sorted(FINAL_RUN_STATES, key=list(RunState).index)
    )


@pytest.mark.parametrize("state", [RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED])
def test_a_running_run_may_end_succeeded_failed_or_cancelled(state: RunState) -> None:
    check_run_end(state)


@pytest.mark.parametrize("state", [RunState.QUEUED, RunState.RUNNING, RunState.EXPIRED])
def test_a_running_run_may_not_end_in_any_other_state(state: RunState) -> None:
    with pytest.raises(TransitionError) as refused:
        check_run_end(state)
    assert str(refused.value) == f"a run cannot go from running to {state.value}"
    assert (refused.value.current, refused.value.new) == (RunState.RUNNING, state)
    assert isinstance(refused.value, StoreError)


def test_a_done_unit_is_never_revived() -> None:
    assert UNIT_TRANSITIONS[UnitState.DONE] == frozenset()
    assert UnitState.CLAIMED in UNIT_TRANSITIONS[UnitState.QUEUED]
    assert set(UNIT_TRANSITIONS) == set(UnitState)


def test_unit_kinds_and_stop_reasons_are_stored_as_their_lower_case_names() -> None:
    assert [str(kind) for kind in UnitKind] == ["run", "batch"]
    assert [str(reason) for reason in StopReason] == ["cancelled", "timeout", "lost", "drain"]

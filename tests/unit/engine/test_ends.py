"""The ends a worker keeps to write together (gristmill.engine.ends), against a store that fails
as the database does when it is away."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from gristmill.engine import ends as ends_module
from gristmill.engine.ends import PendingEnds
from gristmill.errors import StoreUnavailableError
from gristmill.states import RunState, StepState
from gristmill.store.records import Claim, NextClaim, Report, StepEnd, StepOutcome


class FlakyStore:
    """Writes ends as a store would (each fenced: ``fenced`` names the units taken over), after
    failing ``failures`` times."""

    def __init__(self, failures: int = 0, fenced: Sequence[int] = ()):
        self.failures = failures
        self.fenced = set(fenced)
        self.written: list[list[int]] = []

    def end_steps(
        self, ends: Sequence[StepEnd], *, then_claim: NextClaim | None = None
    ) -> list[bool]:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailableError("the database is unavailable: connection refused")
        self.written.append([end.claim.unit_id for end in ends])
        if then_claim is not None:
            then_claim.claims.append(Claim(unit_id=99, run_id="next", attempt=1))
        return [end.claim.unit_id not in self.fenced for end in ends]


def end(unit: int) -> StepEnd:
    outcome = StepOutcome("one", 0, StepState.SUCCEEDED, "1", None, 0.0, 0.0)
    return StepEnd(
        Claim(unit_id=unit, run_id=f"run-{unit}", attempt=1), outcome, Report(), RunState.SUCCEEDED
    )


def test_kept_ends_go_out_together_with_the_next_claim() -> None:
    store = FlakyStore()
    pending = PendingEnds(store)  # type: ignore[arg-type]
    pending.add(end(1))
    pending.add(end(2))
    then_claim = NextClaim("w1", None, 30.0, limit=8)

    pending.write(then_claim)

    assert store.written == [[1, 2]]
    assert [c.unit_id for c in then_claim.claims] == [99]
    assert len(pending) == 0 and not pending.due()


def test_ends_the_database_did_not_take_are_kept_ahead_of_newer_ones() -> None:
    store = FlakyStore(failures=1)
    pending = PendingEnds(store)  # type: ignore[arg-type]
    pending.add(end(1))

    with pytest.raises(StoreUnavailableError):
        pending.write()
    pending.add(end(2))
    pending.write()

    assert store.written == [[1, 2]]


def test_an_end_taken_over_is_dropped_and_said(caplog: pytest.LogCaptureFixture) -> None:
    pending = PendingEnds(FlakyStore(fenced=[2]))  # type: ignore[arg-type]
    pending.add(end(1))
    pending.add(end(2))

    pending.write()

    assert "attempt 1 of run run-2 was taken over; its work is discarded" in caplog.text
    assert "run-1" not in caplog.text


def test_ends_are_due_once_kept_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(ends_module.time, "monotonic", lambda: now[0])
    pending = PendingEnds(FlakyStore())  # type: ignore[arg-type]
    assert not pending.due()
    pending.add(end(1))
    now[0] += ends_module.KEEP_FOR / 2
    pending.add(end(2))  # the oldest counts
    assert not pending.due()
    now[0] += ends_module.KEEP_FOR / 2
    assert pending.due()

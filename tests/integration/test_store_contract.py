"""The store contract: the same behaviours on every backend (memory, SQLite, PostgreSQL).

What the engine relies on: runs created with their first unit, claims in order per queue,
fencing of every write made for a claim that was taken over, the attempt limit of lost
workers, requeue, expiry, pins, accepted steps, log offsets and cancellation.

It lives in the integration tier to share that tier's one Django configuration (the session's
SQLite and PostgreSQL databases): Django can be configured once per process.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gristmill.errors import NotFoundError, TransitionError
from gristmill.states import BatchState, RunState, StepState, UnitKind
from gristmill.store.base import QuotaExceededError, Store
from gristmill.store.memory import MemoryStore
from gristmill.store.records import (
    BatchOutcome,
    BatchSpec,
    Claim,
    Failure,
    InputRecord,
    NewMap,
    NewRun,
    NextClaim,
    OutputRecord,
    QueuedUnit,
    QuotaLimits,
    Report,
    StepEnd,
    StepOutcome,
)
from tests.conftest import service_absent

LEASE = 30.0
INPUT = InputRecord("data.txt", "runs/x/inputs/0/data.txt", 5, "ab" * 32, "text/plain")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A store on each backend. The SQL ones share their database with the whole session:
    tests keep to their own queue (:func:`queue`) and runs."""
    if request.param == "memory":
        yield MemoryStore()
        return
    from gristmill.server.store import DjangoStore

    databases: dict[str, Any] = request.getfixturevalue("databases")
    if request.param == "postgres" and not databases["pg_url"]:
        service_absent(databases["pg_reason"])
    sql = DjangoStore("postgres" if request.param == "postgres" else "default")
    try:
        yield sql
    finally:
        sql.close()


def owner_id(store: Store) -> int:
    """A user id that the store may record as a run's owner."""
    if isinstance(store, MemoryStore):
        return 7
    from django.contrib.auth import get_user_model

    alias = getattr(store, "alias", "default")
    user = get_user_model().objects.db_manager(alias).create_user(f"u-{uuid.uuid4().hex[:8]}")
    return int(user.pk)


@pytest.fixture
def queue() -> str:
    """A queue of this test's own, so that claims see only its units."""
    return f"contract-{uuid.uuid4().hex[:8]}"


def new_run(
    store: Store,
    queue: str,
    *,
    max_attempts: int = 3,
    expires_at: datetime | None = None,
    claimed_by: str | None = None,
) -> str:
    run_id = str(uuid.uuid4())
    store.create_run(
        NewRun(
            id=run_id,
            pipeline="contract",
            queue=queue,
            params={"sample": 100, "names": ["a", "b"]},
            inputs=[INPUT],
            expires_at=expires_at or datetime.now(UTC) + timedelta(days=7),
            max_attempts=max_attempts,
            claimed_by=claimed_by,
        )
    )
    return run_id


def claim_one(store: Store, queue: str, worker: str = "w1", lease: float = LEASE) -> Claim:
    (claim,) = store.claim(worker, queues=[queue], lease=lease)
    return claim


def outcome(name: str = "one", position: int = 0, result: str = '{"n":1}') -> StepOutcome:
    return StepOutcome(
        name,
        position,
        StepState.SUCCEEDED,
        result,
        {"task": name, "inputs": [["data.txt", "ab"]]},
        1.0,
        2.0,
    )


def ended(store: Store, queue: str, state: RunState = RunState.SUCCEEDED, **kw: object) -> str:
    run_id = new_run(store, queue, **kw)  # type: ignore[arg-type]
    (claim,) = store.claim("w1", queues=None, lease=LEASE, run_id=run_id)
    assert store.save_step(claim, outcome(), Report(logs=[(1.0, "one", "log", "hi")]), lease=LEASE)
    assert store.finish(claim, state, Report())
    return run_id


def texts(store: Store, run_id: str) -> list[str]:
    return [line.text for line in store.read_log(run_id)]


# -- submitting and reading ----------------------------------------------------------------


def test_a_created_run_is_queued_with_its_params_and_inputs(store: Store, queue: str) -> None:
    run_id = new_run(store, queue)
    run = store.get_run(run_id)
    assert (run.id, run.pipeline, run.queue, run.state) == (
        run_id,
        "contract",
        queue,
        RunState.QUEUED,
    )
    assert run.params == {"sample": 100, "names": ["a", "b"]}
    assert run.inputs == [INPUT]
    assert (run.attempt, run.cancel_requested, run.pinned, run.started_at) == (
        0,
        False,
        False,
        None,
    )
    assert store.get_steps(run_id) == {}


def bulk(queue: str, count: int, **kw: Any) -> list[NewRun]:
    return [
        NewRun(
            id=str(uuid.uuid4()),
            pipeline="contract",
            queue=queue,
            params={"n": n},
            inputs=[INPUT] * (n % 3),
            expires_at=datetime.now(UTC) + timedelta(days=7),
            **kw,
        )
        for n in range(count)
    ]


def test_runs_created_in_bulk_are_queued_with_their_params_inputs_and_units(
    store: Store, queue: str
) -> None:
    runs = bulk(queue, 5, owner_id=None, max_attempts=2)

    store.create_runs(runs)

    for n, made in enumerate(runs):
        run = store.get_run(made.id)
        assert (run.state, run.queue, run.params, run.inputs) == (
            RunState.QUEUED,
            queue,
            {"n": n},
            [INPUT] * (n % 3),
        )
    claims = store.claim("w1", queues=[queue], lease=LEASE, limit=10)
    assert sorted(c.run_id for c in claims) == sorted(r.id for r in runs)


def test_runs_are_read_together_in_the_order_asked(store: Store, queue: str) -> None:
    # More runs than one query's parameters (500), one of them ended with a step.
    runs = bulk(queue, 501)
    store.create_runs(runs)
    (claim,) = store.claim("w1", queues=None, lease=LEASE, run_id=runs[7].id)
    assert store.save_step(claim, outcome("one"), Report(), lease=LEASE, final=RunState.SUCCEEDED)
    asked = [run.id for run in reversed(runs)]

    loaded = store.get_runs_and_steps(asked)

    assert [run.id for run, _ in loaded] == asked
    assert loaded == [store.get_run_and_steps(run_id) for run_id in asked]
    assert loaded[-8][1]["one"].state == StepState.SUCCEEDED
    with pytest.raises(NotFoundError):
        store.get_runs_and_steps([asked[0], str(uuid.uuid4())])


def test_unfinished_names_the_queued_and_running_runs_in_order(store: Store, queue: str) -> None:
    done = ended(store, queue)
    queued = new_run(store, queue)
    running = new_run(store, queue)
    store.claim("w1", queues=None, lease=LEASE, run_id=running)

    assert store.unfinished([running, done, queued, str(uuid.uuid4())]) == [running, queued]


def test_the_previous_run_is_the_owners_latest_succeeded_one_from_the_same_source(
    store: Store, queue: str
) -> None:
    pipeline = f"p-{uuid.uuid4().hex[:8]}"
    url = InputRecord("x.csv", "", 0, "", "text/csv", "url", "https://example.org/x.csv")
    other_url = InputRecord("x.csv", "", 0, "", "text/csv", "url", "https://example.org/y/x.csv")
    named = InputRecord("data.txt", "p", 1, "ab", "text/plain", "text", "")

    def made(first: InputRecord, owner: int | None, *, succeed: bool = True) -> str:
        run_id = str(uuid.uuid4())
        expires = datetime.now(UTC) + timedelta(days=7)
        store.create_run(NewRun(run_id, pipeline, queue, {}, [first], expires, owner_id=owner))
        if succeed:
            (claim,) = store.claim("w1", queues=None, lease=LEASE, run_id=run_id)
            assert store.finish(claim, RunState.SUCCEEDED, Report())
        return run_id

    owner = owner_id(store)
    assert store.previous_run(pipeline, owner, url) is None
    made(url, owner)
    latest = made(url, owner)
    made(url, owner, succeed=False)
    made(other_url, owner)
    by_name = made(named, owner)

    assert store.previous_run(pipeline, owner, url) == latest
    assert store.previous_run(pipeline, owner, replace(named, path="q", sha256="cd")) == by_name
    assert store.previous_run(pipeline, owner, replace(named, name="other.txt")) is None
    assert store.previous_run("elsewhere", owner, url) is None


def test_runs_created_in_bulk_are_all_or_nothing(store: Store, queue: str) -> None:
    existing = new_run(store, queue)
    runs = bulk(queue, 3)
    clash = NewRun(
        id=existing,
        pipeline="contract",
        queue=queue,
        params={},
        inputs=[],
        expires_at=datetime.now(UTC) + timedelta(days=7),
    )

    with pytest.raises(Exception):  # noqa: B017 - each database words it its own way
        store.create_runs([*runs, clash])

    for made in runs:
        with pytest.raises(NotFoundError):
            store.get_run(made.id)
    assert [c.run_id for c in store.claim("w1", queues=[queue], lease=LEASE, limit=10)] == [
        existing
    ]


def test_runs_created_in_bulk_cannot_be_claimed_at_creation(store: Store, queue: str) -> None:
    with pytest.raises(ValueError, match="never claimed at creation"):
        store.create_runs(bulk(queue, 1, claimed_by="w1"))


def test_an_unknown_or_malformed_run_id_is_not_found(store: Store) -> None:
    for run_id in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        with pytest.raises(NotFoundError, match="no run with id"):
            store.get_run(run_id)
        with pytest.raises(NotFoundError):
            store.request_cancel(run_id)


def test_a_run_created_claimed_is_running_and_nobody_else_can_claim_it(
    store: Store, queue: str
) -> None:
    run_id = str(uuid.uuid4())
    claim = store.create_run(
        NewRun(run_id, "contract", queue, {}, [], datetime.now(UTC), claimed_by="inline")
    )
    assert claim is not None and (claim.run_id, claim.attempt) == (run_id, 1)
    assert store.get_run(run_id).state == RunState.RUNNING
    assert store.claim("w2", queues=[queue], lease=LEASE) == []


# -- claiming ------------------------------------------------------------------------------


def test_claims_take_the_oldest_units_of_the_given_queues_first(store: Store, queue: str) -> None:
    other = f"{queue}-other"
    first, elsewhere, second, third = (new_run(store, q) for q in (queue, other, queue, queue))
    claims = store.claim("w1", queues=[queue], lease=LEASE, limit=2)
    assert [c.run_id for c in claims] == [first, second]
    assert [c.attempt for c in claims] == [1, 1]
    assert [c.run_id for c in store.claim("w1", queues=[other, queue], lease=LEASE, limit=5)] == [
        elsewhere,
        third,
    ]
    assert store.claim("w1", queues=[queue, other], lease=LEASE) == []


def test_a_claim_moves_the_run_to_running_with_its_attempt(store: Store, queue: str) -> None:
    run_id = new_run(store, queue)
    claim = claim_one(store, queue)
    run, steps = store.load(claim)
    assert (run.state, run.attempt, steps) == (RunState.RUNNING, 1, {})
    assert run.started_at is not None
    assert store.get_run(run_id).attempt == 1


def test_a_unit_or_a_run_can_be_claimed_by_id(store: Store, queue: str) -> None:
    first, second = new_run(store, queue), new_run(store, queue)
    (by_run,) = store.claim("w1", queues=None, lease=LEASE, run_id=second)
    assert by_run.run_id == second
    assert store.claim("w1", queues=None, lease=LEASE, run_id=second) == []
    assert store.release(by_run, Report())
    (again,) = store.claim("w2", queues=None, lease=LEASE, unit_id=by_run.unit_id)
    assert (again.run_id, again.attempt) == (second, 2)
    assert store.claim("w2", queues=None, lease=LEASE, unit_id=by_run.unit_id) == []
    assert [c.run_id for c in store.claim("w3", queues=[queue], lease=LEASE)] == [first]


# -- working -------------------------------------------------------------------------------


def test_a_saved_step_is_read_back_with_its_result_outputs_and_report(
    store: Store, queue: str
) -> None:
    run_id = new_run(store, queue)
    claim = claim_one(store, queue)
    output = OutputRecord("one", "out.txt", "runs/x/a1/one/out.txt", 3, "cd" * 32, "text/plain")
    report = Report("one", "counting", 5, 10, [(1.0, "one", "log", "counted")])
    step = StepOutcome(
        "one", 0, StepState.SUCCEEDED, '{"n":1}', {"task": "one"}, 1.0, 2.0, outputs=[output]
    )
    assert store.save_step(claim, step, report, lease=LEASE)
    stored = store.get_steps(run_id)["one"]
    assert (stored.state, stored.attempt, stored.result, stored.fingerprint) == (
        StepState.SUCCEEDED,
        1,
        {"n": 1},
        {"task": "one"},
    )
    assert (stored.started_at, stored.finished_at, stored.outputs) == (1.0, 2.0, [output])
    run = store.get_run(run_id)
    assert (run.state, run.current_step, run.stage, run.progress_done, run.progress_total) == (
        RunState.RUNNING,
        "one",
        "counting",
        5,
        10,
    )
    assert texts(store, run_id) == ["counted"]


def test_saving_a_step_again_replaces_it_and_its_outputs(store: Store, queue: str) -> None:
    run_id = new_run(store, queue)
    claim = claim_one(store, queue)
    old = OutputRecord("one", "old.txt", "runs/x/a1/one/old.txt", 1, "ef" * 32, "text/plain")
    first = StepOutcome("one", 0, StepState.SUCCEEDED, "1", None, 1.0, 2.0, outputs=[old])
    assert store.save_step(claim, first, Report(), lease=LEASE)
    assert store.save_step(claim, outcome(result="2"), Report(), lease=LEASE)
    (stored,) = store.get_steps(run_id).values()
    assert (stored.result, stored.outputs) == (2, [])


def test_the_last_step_can_end_the_run_and_claim_the_next_unit(store: Store, queue: str) -> None:
    run_id, following = new_run(store, queue), new_run(store, queue)
    claim = claim_one(store, queue)
    next_claim = NextClaim("w1", [queue], LEASE)
    report = Report(logs=[(1.0, "one", "log", "last words")])
    assert store.save_step(
        claim, outcome(), report, lease=LEASE, final=RunState.SUCCEEDED, then_claim=next_claim
    )
    run = store.get_run(run_id)
    assert (run.state, run.current_step, run.error_message) == (RunState.SUCCEEDED, None, None)
    assert run.finished_at is not None
    assert texts(store, run_id) == ["last words"]
    assert [c.run_id for c in next_claim.claims] == [following]
    assert store.get_run(following).state == RunState.RUNNING
    assert not store.flush(claim, Report(), lease=LEASE).owned  # the unit is done


def test_several_last_steps_end_their_runs_together_each_fenced_on_its_own(
    store: Store, queue: str
) -> None:
    # Three runs claimed at once; the middle one is taken over by another worker meanwhile.
    runs = [new_run(store, queue) for _ in range(3)]
    following = [new_run(store, queue) for _ in range(3)]
    claims = sorted(
        store.claim("w1", queues=[queue], lease=LEASE, limit=3), key=lambda c: runs.index(c.run_id)
    )
    assert store.release(claims[1], Report())
    taken = claim_one(store, queue, "w2")
    assert taken.run_id == runs[1]
    ends = [
        StepEnd(
            claim,
            outcome(result=str(n)),
            Report(logs=[(1.0, "one", "log", f"end {n}")]),
            RunState.SUCCEEDED,
        )
        for n, claim in enumerate(claims)
    ]
    next_claim = NextClaim("w1", [queue], LEASE, limit=2)

    written = store.end_steps(ends, then_claim=next_claim)

    assert written == [True, False, True]
    for n in (0, 2):
        run, steps = store.get_run_and_steps(runs[n])
        assert (run.state, steps["one"].result, texts(store, runs[n])) == (
            RunState.SUCCEEDED,
            n,
            [f"end {n}"],
        )
    run, steps = store.get_run_and_steps(runs[1])
    released = ["attempt 1 released by a stopping worker"]  # the release's line, not the end's
    assert (run.state, steps, texts(store, runs[1])) == (RunState.RUNNING, {}, released)
    assert store.flush(taken, Report(), lease=LEASE).owned
    assert sorted(c.run_id for c in next_claim.claims) == sorted(following[:2])


def test_finishing_a_run_records_the_failure(store: Store, queue: str) -> None:
    run_id = new_run(store, queue)
    claim = claim_one(store, queue)
    failure = Failure("internal error, reference abc", ref="abc", traceback="Traceback ...")
    assert store.finish(claim, RunState.FAILED, Report(), failure)
    run = store.get_run(run_id)
    assert (run.state, run.error_message, run.error_ref, run.error_traceback) == (
        RunState.FAILED,
        "internal error, reference abc",
        "abc",
        "Traceback ...",
    )


def test_a_heartbeat_writes_the_report_and_says_the_claim_is_owned(
    store: Store, queue: str
) -> None:
    run_id = new_run(store, queue)
    claim = claim_one(store, queue)
    report = Report("one", "reading", 1, None, [(1.0, "one", "log", "a")])
    renewal = store.flush(claim, report, lease=LEASE)
    assert (renewal.owned, renewal.cancel_requested) == (True, False)
    run = store.get_run(run_id)
    assert (run.current_step, run.stage, run.progress_done) == ("one", "reading", 1)
    assert texts(store, run_id) == ["a"]


def test_a_taken_over_attempt_can_write_nothing(store: Store, queue: str) -> None:
    run_id = new_run(store, queue)
    first = claim_one(store, queue, "w1")
    assert store.release(first, Report())
    second = claim_one(store, queue, "w2")
    assert second.attempt == first.attempt + 1
    late = Report("late", "late", 1, 1, [(1.0, "one", "log", "late line")])
    next_claim = NextClaim("w1", [queue], LEASE)
    new_run(store, queue)
    assert not store.save_step(first, outcome(), late, lease=LEASE)
    assert not store.save_step(
        first, outcome(), late, lease=LEASE, final=RunState.SUCCEEDED, then_claim=next_claim
    )
    assert store.flush(first, late, lease=LEASE).owned is False
    assert not store.finish(first, RunState.FAILED, late, Failure("late"), then_claim=next_claim)
    assert not store.release(first, Report())
    assert next_claim.claims == []
    run = store.get_run(run_id)
    assert (run.state, run.current_step, run.attempt) == (RunState.RUNNING, None, 2)
    assert store.get_steps(run_id) == {}
    assert "late line" not in texts(store, run_id)
    assert store.finish(second, RunState.SUCCEEDED, Report())


def test_a_released_unit_goes_back_to_the_queue_without_counting_a_failure(
    store: Store, queue: str
) -> None:
    run_id = new_run(store, queue, max_attempts=1)
    claim = claim_one(store, queue)
    assert store.release(claim, Report())
    assert store.get_run(run_id).state == RunState.QUEUED
    assert texts(store, run_id) == ["attempt 1 released by a stopping worker"]
    assert claim_one(store, queue).attempt == 2


# -- lost workers --------------------------------------------------------------------------


def test_a_dead_workers_units_are_requeued_then_failed_at_the_attempt_limit(
    store: Store, queue: str
) -> None:
    run_id = new_run(store, queue, max_attempts=2)
    worker = f"host/{uuid.uuid4().hex[:6]}"
    claim_one(store, queue, worker)
    assert store.release_worker(worker, "killed by signal SIGKILL") == 1
    assert store.get_run(run_id).state == RunState.QUEUED
    claim_one(store, queue, worker)
    assert store.release_worker(worker, "killed by signal SIGKILL") == 1
    assert store.release_worker(worker, "killed by signal SIGKILL") == 0
    message = "worker lost (killed by signal SIGKILL) on attempt 2; gave up after 2 lost attempts"
    run = store.get_run(run_id)
    assert (run.state, run.error_message) == (RunState.FAILED, message)
    assert texts(store, run_id) == [
        "attempt 1 lost: worker lost (killed by signal SIGKILL); retrying",
        message,
    ]
    assert store.claim(worker, queues=[queue], lease=LEASE) == []


def test_units_whose_lease_ran_out_are_reaped(store: Store, queue: str) -> None:
    retried, given_up = new_run(store, queue), new_run(store, queue, max_attempts=1)
    store.claim("w1", queues=[queue], lease=-1, limit=2)
    assert store.reap() >= 2  # the database may hold other tests' expired leases
    assert store.get_run(retried).state == RunState.QUEUED
    assert texts(store, retried) == ["attempt 1 lost: worker lost (its lease expired); retrying"]
    run = store.get_run(given_up)
    assert (run.state, run.error_message) == (
        RunState.FAILED,
        "worker lost (its lease expired) on attempt 1; gave up after 1 lost attempts",
    )


def test_a_renewed_lease_is_not_reaped(store: Store, queue: str) -> None:
    run_id = new_run(store, queue)
    claim = claim_one(store, queue, lease=-1)
    assert store.flush(claim, Report(), lease=LEASE).owned
    store.reap()
    assert store.get_run(run_id).state == RunState.RUNNING
    assert store.flush(claim, Report(), lease=LEASE).owned


# -- rerun, expiry, pins -------------------------------------------------------------------


def test_an_ended_run_can_be_queued_again_with_rising_attempts(store: Store, queue: str) -> None:
    run_id = ended(store, queue, RunState.FAILED)
    assert store.requeue(run_id, reason="stale results")
    run = store.get_run(run_id)
    assert (run.state, run.finished_at, run.error_message) == (RunState.QUEUED, None, None)
    assert texts(store, run_id)[-1] == "queued again: stale results"
    assert not store.requeue(run_id, reason="twice")
    claim = claim_one(store, queue)
    assert (claim.run_id, claim.attempt) == (run_id, 2)
    assert store.load(claim)[1]["one"].result == {"n": 1}  # earlier results stay for reuse
    assert not store.requeue(run_id, reason="while running")


def test_expiring_an_ended_run_keeps_only_a_small_record(store: Store, queue: str) -> None:
    run_id = ended(store, queue)
    assert store.expire(run_id, reason="deleted by its owner")
    run, steps = store.get_run_and_steps(run_id)
    assert (run.state, run.error_message, run.inputs, steps) == (
        RunState.EXPIRED,
        "deleted by its owner",
        [],
        {},
    )
    assert store.read_log(run_id) == []
    assert not store.expire(run_id, reason="again")
    assert not store.requeue(run_id, reason="expired")
    assert not store.set_pinned(run_id, True)
    assert run_id in store.unwiped(limit=10_000)
    store.mark_wiped(run_id)
    assert run_id not in store.unwiped(limit=10_000)


@pytest.mark.parametrize("state", [RunState.QUEUED, RunState.RUNNING, RunState.EXPIRED])
def test_a_running_run_cannot_end_in_a_state_the_transitions_forbid(
    store: Store, queue: str, state: RunState
) -> None:
    # Given a running run, when its worker asks to end it in a state a running run cannot
    # end in, then the store refuses with the move named, and writes nothing.
    run_id = new_run(store, queue)
    claim = claim_one(store, queue)
    with pytest.raises(TransitionError) as refused:
        store.finish(claim, state, Report(logs=[(1.0, "", "system", "x")]))
    assert str(refused.value) == f"a run cannot go from running to {state.value}"
    with pytest.raises(TransitionError):
        store.save_step(claim, outcome(), Report(), lease=LEASE, final=state)
    assert store.get_run(run_id).state == RunState.RUNNING
    assert store.get_steps(run_id) == {}
    assert store.finish(claim, RunState.SUCCEEDED, Report())  # the claim still holds


def test_queued_and_running_runs_cannot_be_expired(store: Store, queue: str) -> None:
    queued, running = new_run(store, queue), new_run(store, queue)
    store.claim("w1", queues=None, lease=LEASE, run_id=running)
    assert not store.expire(queued, reason="x")
    assert not store.expire(running, reason="x")
    with pytest.raises(NotFoundError):
        store.expire(str(uuid.uuid4()), reason="x")


def test_due_runs_are_ended_unpinned_and_past_expiry_oldest_first(store: Store, queue: str) -> None:
    base = datetime(2001, 2, 3, tzinfo=UTC)  # long past: no other test's runs are due then
    late = ended(store, queue, expires_at=base + timedelta(hours=2))
    early = ended(store, queue, expires_at=base + timedelta(hours=1))
    pinned = ended(store, queue, expires_at=base)
    assert store.set_pinned(pinned, True)
    new_run(store, queue, expires_at=base)  # queued: never due
    not_yet = ended(store, queue, expires_at=base + timedelta(hours=5))
    due = store.due_for_expiry(base + timedelta(hours=3), limit=10)
    assert [d.id for d in due] == [early, late]
    assert due[0].expires_at == base + timedelta(hours=1)
    assert [d.id for d in store.due_for_expiry(base + timedelta(hours=3), limit=1)] == [early]
    assert store.set_pinned(pinned, False)
    for run_id in (pinned, early, late, not_yet):  # leave nothing due behind
        store.expire(run_id, reason="test over")


def test_a_stored_step_can_be_accepted_under_a_new_fingerprint(store: Store, queue: str) -> None:
    run_id = ended(store, queue)
    assert store.accept_step(run_id, "one", {"task": "one", "version": "2"})
    stored = store.get_steps(run_id)["one"]
    assert (stored.fingerprint, stored.accepted) == ({"task": "one", "version": "2"}, True)
    assert not store.accept_step(run_id, "never-ran", {})


def test_the_log_is_read_from_an_offset(store: Store, queue: str) -> None:
    run_id = new_run(store, queue)
    claim = claim_one(store, queue)
    lines = [(float(i), "one", "log", f"line {i}") for i in range(5)]
    store.flush(claim, Report(logs=lines), lease=LEASE)
    read = store.read_log(run_id)
    assert [line.text for line in read] == [f"line {i}" for i in range(5)]
    assert [line.id for line in read] == sorted({line.id for line in read})
    after = store.read_log(run_id, after=read[1].id, limit=2)
    assert [line.text for line in after] == ["line 2", "line 3"]
    assert store.read_log(run_id, after=read[-1].id) == []


# -- cancellation --------------------------------------------------------------------------


def test_cancelling_a_queued_run_ends_it_at_once(store: Store, queue: str) -> None:
    run_id = new_run(store, queue)
    assert store.request_cancel(run_id)
    run = store.get_run(run_id)
    assert (run.state, run.error_message) == (RunState.CANCELLED, "cancelled before it started")
    assert store.claim("w1", queues=[queue], lease=LEASE) == []
    assert not store.request_cancel(run_id)


def test_cancelling_a_running_run_is_seen_by_its_heartbeat(store: Store, queue: str) -> None:
    run_id = new_run(store, queue)
    claim = claim_one(store, queue)
    assert store.request_cancel(run_id)
    assert store.get_run(run_id).cancel_requested
    assert store.flush(claim, Report(), lease=LEASE).cancel_requested
    assert store.finish(claim, RunState.CANCELLED, Report(), Failure("the run was cancelled"))
    run = store.get_run(run_id)
    # The request stays on record (who asked and when) until the run is queued again.
    assert (run.state, run.error_message, run.cancel_requested) == (
        RunState.CANCELLED,
        "the run was cancelled",
        True,
    )
    assert not store.request_cancel(run_id)


def test_a_run_cancelled_while_its_last_step_ran_ends_cancelled(store: Store, queue: str) -> None:
    by_save, by_finish = new_run(store, queue), new_run(store, queue)
    saving, finishing = store.claim("w1", queues=[queue], lease=LEASE, limit=2)
    assert store.request_cancel(by_save) and store.request_cancel(by_finish)
    assert store.save_step(saving, outcome(), Report(), lease=LEASE, final=RunState.SUCCEEDED)
    assert store.finish(finishing, RunState.SUCCEEDED, Report())
    for run_id in (by_save, by_finish):
        assert store.get_run(run_id).state == RunState.CANCELLED


# -- doorbells -----------------------------------------------------------------------------


@pytest.mark.parametrize("bell", ["work", "done"])
def test_a_ring_wakes_a_waiter(store: Store, bell: str) -> None:
    wait = store.wait_for_work if bell == "work" else store.wait_for_done
    wait(0)  # start listening
    woken = threading.Event()

    def waiter() -> None:
        wait(60)
        woken.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    try:
        for _ in range(300):  # the waiter may not be waiting yet when a ring goes out
            store.ring_work() if bell == "work" else store.ring_done(str(uuid.uuid4()))
            if woken.wait(0.1):
                break
        assert woken.is_set()
    finally:
        thread.join(60)


def test_fetched_inputs_replace_the_submitted_ones_for_the_claim_that_holds_the_run(
    store: Store, queue: str
) -> None:
    run_id = new_run(store, queue)
    claim = claim_one(store, queue)
    fetched = InputRecord("data.csv", "runs/x/data.csv", 12, "f" * 64, "text/csv", "file", "u")
    assert store.save_inputs(claim, {0: fetched}, Report(), lease=LEASE)
    (stored,) = store.get_run(run_id).inputs
    assert (stored.name, stored.path, stored.size, stored.sha256, stored.kind) == (
        "data.csv",
        "runs/x/data.csv",
        12,
        "f" * 64,
        INPUT.kind,
    )


def test_fetched_inputs_of_a_claim_taken_over_are_not_saved(store: Store, queue: str) -> None:
    run_id = new_run(store, queue)
    late = claim_one(store, queue, lease=-1.0)
    assert store.reap() == 1
    assert claim_one(store, queue, worker="w2").attempt == 2
    fetched = InputRecord("data.csv", "runs/x/data.csv", 12, "f" * 64, "text/csv")
    assert not store.save_inputs(late, {0: fetched}, Report(), lease=LEASE)
    assert store.get_run(run_id).inputs == [INPUT]


def test_a_worker_sees_the_units_it_holds(store: Store, queue: str) -> None:
    first, second = new_run(store, queue), new_run(store, queue)
    claims = store.claim("w-held", queues=[queue], lease=LEASE, limit=2)
    assert [c.run_id for c in store.held_by("w-held")] == [c.run_id for c in claims]
    assert {first, second} == {c.run_id for c in claims}
    assert store.held_by("somebody-else") == []


# -- the bell and the reconciler's needs ---------------------------------------------------


def test_the_bell_hears_of_every_unit_queued_once_it_is_committed(store: Store, queue: str) -> None:
    heard: list[QueuedUnit] = []

    def bell(units: Sequence[QueuedUnit]) -> None:
        heard.extend(u for u in units if u.queue == queue)

    store.bell = bell
    run_id = new_run(store, queue)
    assert len(heard) == 1
    claim = claim_one(store, queue)
    assert claim.unit_id == heard[0].unit_id  # committed: claimable by anyone who heard
    assert store.release(claim, Report())
    assert [u.unit_id for u in heard] == [claim.unit_id] * 2
    claim = claim_one(store, queue)
    assert store.finish(claim, RunState.SUCCEEDED, Report())
    assert len(heard) == 2
    assert store.requeue(run_id, reason="again")
    assert len(heard) == 3
    claim = claim_one(store, queue, lease=-1)
    assert claim.unit_id == heard[2].unit_id
    store.reap()
    assert [u.unit_id for u in heard[3:]] == [claim.unit_id]
    worker = f"host/{uuid.uuid4().hex[:6]}"
    claim = claim_one(store, queue, worker)
    assert store.release_worker(worker, "killed by signal SIGKILL") == 1
    assert [u.unit_id for u in heard[4:]] == [claim.unit_id]
    assert {u.queue for u in heard} == {queue}


def test_a_bell_that_fails_fails_nothing_the_unit_stays_queued(store: Store, queue: str) -> None:
    def bell(units: Sequence[QueuedUnit]) -> None:
        raise ConnectionError("the broker is down")

    store.bell = bell
    run_id = new_run(store, queue)
    assert store.get_run(run_id).state == RunState.QUEUED
    (unit,) = [u for u in store.queued_units(limit=100_000) if u.queue == queue]
    assert claim_one(store, queue).unit_id == unit.unit_id


def test_queued_units_are_listed_oldest_first_up_to_the_limit(store: Store, queue: str) -> None:
    for _ in range(3):
        new_run(store, queue)
    mine = [u for u in store.queued_units(limit=100_000) if u.queue == queue]
    assert len(mine) == 3
    assert [u.unit_id for u in mine] == sorted(u.unit_id for u in mine)
    assert len(store.queued_units(limit=2)) == 2
    claim_one(store, queue)
    assert [u.unit_id for u in store.queued_units(limit=100_000) if u.queue == queue] == [
        u.unit_id for u in mine[1:]
    ]


class Elsewhere:
    """Another holder of locks: another thread (another connection, as another process would
    have), on another store on the same database for the SQL stores."""

    def __init__(self, store: Store):
        self.store = store
        if not isinstance(store, MemoryStore):
            from gristmill.server.store import DjangoStore

            self.store = DjangoStore(store.alias)  # type: ignore[attr-defined]

    def do(self, action: Callable[[Store], bool | None]) -> bool | None:
        answers: list[bool | None] = []

        def run() -> None:
            try:
                answers.append(action(self.store))
            finally:
                self.store.end_thread()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        assert answers, "the other thread failed"
        return answers[0]

    def try_lock(self, name: str) -> bool | None:
        def attempt(store: Store) -> bool:
            taken = store.try_lock(name)
            if taken:
                store.unlock(name)
            return taken

        return self.do(attempt)

    def close(self) -> None:
        if not isinstance(self.store, MemoryStore):
            self.store.close()


def test_a_lock_is_held_by_one_process_at_a_time(store: Store) -> None:
    elsewhere = Elsewhere(store)
    name = f"contract-{uuid.uuid4().hex[:8]}"
    assert store.try_lock(name)
    try:
        assert store.try_lock(name)  # taken again by its holder: renewed
        assert elsewhere.try_lock(name) is False
    finally:
        store.unlock(name)
    assert elsewhere.try_lock(name) is True
    elsewhere.close()


def test_a_lock_whose_lease_ran_out_is_taken_over_and_a_live_one_is_not(store: Store) -> None:
    elsewhere = Elsewhere(store)
    name = f"contract-{uuid.uuid4().hex[:8]}"
    # A holder that froze: its lease ran out (a second ago) and it never gave the lock back.
    assert elsewhere.do(lambda other: other.try_lock(name, lease=-1)) is True
    assert store.try_lock(name, lease=3600)  # taken over
    try:
        # The frozen holder wakes up: the lock is no longer its own, and its unlock is a no-op.
        assert elsewhere.do(lambda other: other.try_lock(name, lease=3600)) is False
        elsewhere.do(lambda other: other.unlock(name))
        assert elsewhere.try_lock(name) is False
    finally:
        store.unlock(name)
    assert elsewhere.try_lock(name) is True
    elsewhere.close()


def test_the_bell_hears_of_every_unit_queued_in_bulk(store: Store, queue: str) -> None:
    heard: list[QueuedUnit] = []

    def bell(units: Sequence[QueuedUnit]) -> None:
        heard.extend(u for u in units if u.queue == queue)

    store.bell = bell
    store.create_runs(bulk(queue, 3))
    assert len(heard) == 3
    claimed = {claim_one(store, queue).unit_id for _ in range(3)}
    assert claimed == {u.unit_id for u in heard}


# -- map steps ------------------------------------------------------------------------------

FINGERPRINT = {"task": "check", "code": "c", "inputs": [["data.txt", "ab"]]}


def mapped(store: Store, queue: str, batches: int = 3, on_failure: str = "continue") -> str:
    """A running run whose map step ``check`` was cut into ``batches`` batches of 10 items."""
    run_id = new_run(store, queue)
    run_claim = claim_one(store, queue, queue + "-w1")
    specs = [
        BatchSpec(n, 10 * n - 9, 10, "runs/x/data.jsonl", 100 * n, None)
        for n in range(1, batches + 1)
    ]
    new_map = NewMap("check", 0, FINGERPRINT, on_failure, 10 * batches, specs)
    assert store.start_map(run_claim, new_map, Report(progress_done=0, progress_total=30))
    return run_id


def batch_done(number: int, findings: int = 2, batches: int = 3) -> BatchOutcome:
    items = [(10 * number - 9 + i, "odd", f'{{"kind":"odd","n":{i}}}') for i in range(findings)]
    return BatchOutcome(
        "check",
        number,
        BatchState.DONE,
        10,
        items,
        {"odd": findings},
        {"odd": [{"kind": "odd", "n": i} for i in range(findings)]},
        batches_total=batches,
    )


def test_starting_a_map_queues_one_batch_unit_per_batch_and_keeps_the_run_running(
    store: Store, queue: str
) -> None:
    run_id = mapped(store, queue)
    run = store.get_run(run_id)
    assert (run.state, run.progress_done, run.progress_total) == (RunState.RUNNING, 0, 30)
    claims = store.claim(queue + "-w1", queues=[queue], lease=LEASE, limit=10)
    assert [c.kind for c in claims] == [UnitKind.BATCH] * 3
    records = [store.load_batch(c) for c in claims]
    assert [(r.step, r.spec.number, r.spec.first_item, r.spec.start) for r in records if r] == [
        ("check", 1, 1, 100),
        ("check", 2, 11, 200),
        ("check", 3, 21, 300),
    ]
    [status] = store.map_status(run_id)
    assert (status.batches_total, status.remaining, status.complete) == (3, 3, False)
    assert status.batches == {"pending": 3, "done": 0, "failed": 0, "skipped": 0}


def test_the_last_batch_to_end_queues_the_walk_and_findings_are_stored_once(
    store: Store, queue: str
) -> None:
    run_id = mapped(store, queue)
    claims = store.claim(queue + "-w1", queues=[queue], lease=LEASE, limit=3)
    for claim in claims[:2]:
        assert store.save_batch(claim, batch_done(store.load_batch(claim).spec.number), Report())  # type: ignore[union-attr]
    assert store.claim(queue + "-w1", queues=[queue], lease=LEASE) == []
    run = store.get_run(run_id)
    assert (run.stage, run.progress_done, run.current_step) == ("batch 2 of 3", 20, "check")
    next_claim = NextClaim(queue + "-w1", [queue], LEASE)
    assert store.save_batch(claims[2], batch_done(3), Report(), then_claim=next_claim)
    [walk] = next_claim.claims
    assert (walk.kind, walk.run_id, walk.attempt) == (UnitKind.RUN, run_id, 2)
    assert store.get_run(run_id).attempt == 2
    [status] = store.map_status(run_id)
    assert (status.complete, status.items_done, status.counts) == (True, 30, {"odd": 6})
    # Up to 5 examples of each kind, from the lowest batches first.
    assert [e["n"] for e in status.examples["odd"]] == [0, 1, 0, 1, 0]
    # A status shares nothing with the store (which may keep decoded batch rows): changing
    # one read changes neither the store nor the next read.
    status.examples["odd"][0]["n"] = 99
    status.examples["odd"].clear()
    status.counts["odd"] = 0
    [again] = store.map_status(run_id)
    assert again.counts == {"odd": 6}
    assert [e["n"] for e in again.examples["odd"]] == [0, 1, 0, 1, 0]
    found = store.read_findings(run_id, "check")
    assert [(f.item, f.batch) for f in found] == [
        (1, 1),
        (2, 1),
        (11, 2),
        (12, 2),
        (21, 3),
        (22, 3),
    ]
    # A page ends with an item's last finding; read on after its last item.
    page = store.read_findings(run_id, "check", after=2, limit=1)
    assert [f.item for f in page] == [11]
    assert store.read_findings(run_id, "check", kind="even") == []


def test_a_batch_saved_by_a_late_delivery_is_fenced_and_a_redo_replaces_findings(
    store: Store, queue: str
) -> None:
    run_id = mapped(store, queue, batches=1)
    [first] = store.claim(queue + "-w1", queues=[queue], lease=LEASE)
    assert store.release_worker(queue + "-w1", "killed by signal SIGKILL") == 1
    assert store.get_run(run_id).state == RunState.RUNNING
    [second] = store.claim(queue + "-w2", queues=[queue], lease=LEASE)
    assert (second.unit_id, second.attempt) == (first.unit_id, 2)
    assert not store.save_batch(first, batch_done(1, findings=5, batches=1), Report())
    assert store.save_batch(second, batch_done(1, batches=1), Report())
    assert [f.item for f in store.read_findings(run_id, "check")] == [1, 2]
    [status] = store.map_status(run_id)
    assert (status.items_done, status.counts) == (10, {"odd": 2})


def test_a_batch_lost_past_the_attempt_limit_fails_and_counts_down(
    store: Store, queue: str
) -> None:
    run_id = mapped(store, queue, batches=1)
    for _ in range(3):
        claim_one(store, queue, queue + "-w1")
        store.release_worker(queue + "-w1", "killed by signal SIGKILL")
    [status] = store.map_status(run_id)
    assert status.complete and status.batches["failed"] == 1
    assert status.failed_batches[0].error == (
        "worker lost (killed by signal SIGKILL) on attempt 3; gave up after 3 lost attempts"
    )
    [walk] = store.claim(queue + "-w1", queues=[queue], lease=LEASE)
    assert walk.kind == UnitKind.RUN


def test_ending_the_run_ends_its_queued_batches(store: Store, queue: str) -> None:
    run_id = mapped(store, queue)
    claim = claim_one(store, queue, queue + "-w1")
    assert store.request_cancel(run_id)
    assert store.finish(claim, RunState.CANCELLED, Report(), Failure("the run was cancelled"))
    assert store.get_run(run_id).state == RunState.CANCELLED
    assert store.claim(queue + "-w1", queues=[queue], lease=LEASE) == []


def test_retrying_failed_batches_requeues_only_them_with_a_new_generation(
    store: Store, queue: str
) -> None:
    run_id = mapped(store, queue)
    claims = store.claim(queue + "-w1", queues=[queue], lease=LEASE, limit=3)
    assert store.retry_failed_batches(run_id) == 0  # still running
    failed = BatchOutcome("check", 2, BatchState.FAILED, 3, error="item 13: boom", batches_total=3)
    for claim, outcome_ in zip(claims, [batch_done(1), failed, batch_done(3)], strict=True):
        assert store.save_batch(claim, outcome_, Report())
    [walk] = store.claim(queue + "-w1", queues=[queue], lease=LEASE)
    assert store.finish(walk, RunState.FAILED, Report(), Failure("step `check` failed"))
    assert store.retry_failed_batches(run_id) == 1
    run = store.get_run(run_id)
    assert (run.state, run.error_message) == (RunState.RUNNING, None)
    [status] = store.map_status(run_id)
    assert (status.generation, status.remaining, status.items_done) == (2, 1, 20)
    assert status.settled is False
    [again] = store.claim(queue + "-w1", queues=[queue], lease=LEASE)
    assert store.load_batch(again).spec.number == 2  # type: ignore[union-attr]
    assert store.save_batch(again, batch_done(2), Report())
    [status] = store.map_status(run_id)
    assert (status.complete, status.items_done, status.counts) == (True, 30, {"odd": 6})
    assert [f.item for f in store.read_findings(run_id, "check")] == [1, 2, 11, 12, 21, 22]


def test_a_requeue_settles_maps_and_expiry_removes_them(store: Store, queue: str) -> None:
    run_id = mapped(store, queue, batches=1)
    [batch] = store.claim(queue + "-w1", queues=[queue], lease=LEASE)
    assert store.save_batch(batch, batch_done(1, batches=1), Report())
    [walk] = store.claim(queue + "-w1", queues=[queue], lease=LEASE)
    assert store.finish(walk, RunState.SUCCEEDED, Report())
    assert store.requeue(run_id, reason="rerun")
    assert store.map_status(run_id)[0].settled
    [walk] = store.claim(queue + "-w1", queues=[queue], lease=LEASE)
    assert walk.attempt == 3 and walk.kind == UnitKind.RUN
    assert store.finish(walk, RunState.SUCCEEDED, Report())
    assert store.expire(run_id, reason="retention over")
    assert store.map_status(run_id) == []
    assert store.read_findings(run_id, "check") == []


def test_a_report_without_status_writes_its_log_lines_only(store: Store, queue: str) -> None:
    run_id = mapped(store, queue, batches=1)
    batch = claim_one(store, queue, queue + "-w1")
    report = Report("other", "a stage", None, None, [(1.0, "check", "log", "hi")], status=False)
    assert store.flush(batch, report, lease=LEASE).owned
    run = store.get_run(run_id)
    assert (run.progress_done, run.progress_total, run.stage) == (0, 30, None)
    assert texts(store, run_id)[-1] == "hi"


def test_a_batch_loaded_after_another_failed_under_fail_says_so(store: Store, queue: str) -> None:
    mapped(store, queue, batches=2, on_failure="fail")
    first, second = store.claim(queue + "-w1", queues=[queue], lease=LEASE, limit=2)
    assert not store.load_batch(second).map_failed  # type: ignore[union-attr]
    failed = BatchOutcome("check", 1, BatchState.FAILED, 1, error="item 1: boom", batches_total=2)
    assert store.save_batch(first, failed, Report())
    assert store.load_batch(second).map_failed  # type: ignore[union-attr]


def test_the_bell_hears_of_batch_units_the_walk_and_retried_batches(
    store: Store, queue: str
) -> None:
    heard: list[QueuedUnit] = []

    def bell(units: Sequence[QueuedUnit]) -> None:
        heard.extend(u for u in units if u.queue == queue)

    store.bell = bell
    run_id = mapped(store, queue)
    assert len(heard) == 1 + 3  # the run's own unit, then one per batch
    claims = store.claim(queue + "-w1", queues=[queue], lease=LEASE, limit=3)
    assert {c.unit_id for c in claims} == {u.unit_id for u in heard[1:]}
    failed = BatchOutcome("check", 2, BatchState.FAILED, 3, error="item 13: boom", batches_total=3)
    for claim, outcome_ in zip(claims[:2], [batch_done(1), failed], strict=True):
        assert store.save_batch(claim, outcome_, Report())
    assert len(heard) == 4  # no walk before the last batch
    assert store.save_batch(claims[2], batch_done(3), Report())
    [walk_unit] = heard[4:]
    [walk] = store.claim(queue + "-w1", queues=[queue], lease=LEASE)
    assert (walk.unit_id, walk.kind) == (walk_unit.unit_id, UnitKind.RUN)
    assert store.finish(walk, RunState.FAILED, Report(), Failure("step `check` failed"))
    assert store.retry_failed_batches(run_id) == 1
    [retried] = heard[5:]
    [again] = store.claim(queue + "-w1", queues=[queue], lease=LEASE)
    assert again.unit_id == retried.unit_id
    worker = queue + "-w1"
    assert store.release_worker(worker, "killed by signal SIGKILL") == 1
    assert [u.unit_id for u in heard[6:]] == [again.unit_id]


# -- fair queues, priorities and quotas ----------------------------------------------------


def submitted(
    store: Store,
    queue: str,
    submitter: str,
    count: int = 1,
    *,
    priority: int = 0,
    quota: QuotaLimits | None = None,
    expires_at: datetime | None = None,
) -> list[str]:
    """``count`` runs of ``submitter`` created in one submission (bulk when more than one)."""
    runs = [
        NewRun(
            id=str(uuid.uuid4()),
            pipeline="contract",
            queue=queue,
            params={},
            inputs=[INPUT],
            expires_at=expires_at or datetime.now(UTC) + timedelta(days=7),
            submitter=submitter,
            priority=priority,
            quota=quota,
        )
        for _ in range(count)
    ]
    if count == 1:
        store.create_run(runs[0])
    else:
        store.create_runs(runs)
    return [run.id for run in runs]


def test_a_submitter_with_many_runs_queued_does_not_starve_another(
    store: Store, queue: str
) -> None:
    heavy, light = f"user:heavy-{queue}", f"user:light-{queue}"
    many = submitted(store, queue, heavy, 100)
    (one,) = submitted(store, queue, light)
    # A worker taking one unit at a time and finishing it before the next claim: the light
    # submitter's run is taken within the first two claims (one round of turns).
    order = []
    for _ in range(3):
        claim = claim_one(store, queue)
        order.append(claim.run_id)
        assert store.finish(claim, RunState.SUCCEEDED, Report())
    assert one in order[:2]
    assert [r for r in order if r != one] == many[:2]
    # Held claims (parallel workers) take the heavy one's in order.
    assert [claim_one(store, queue, f"w{n}").run_id for n in range(3)] == many[2:5]


def test_turns_go_round_every_waiting_submitter(store: Store, queue: str) -> None:
    a = submitted(store, queue, f"user:a-{queue}", 3)
    b = submitted(store, queue, f"address:b-{queue}", 3)
    c = submitted(store, queue, f"user:c-{queue}", 1)
    # Workers each taking one unit and holding it (nothing ends meanwhile).
    order = [claim_one(store, queue, f"w{n}").run_id for n in range(7)]
    assert order == [a[0], b[0], c[0], a[1], b[1], a[2], b[2]]
    # A claim of many units takes the first of that order (a database returns them in any
    # order).
    more = submitted(store, queue, f"user:a-{queue}", 2)
    more += submitted(store, queue, f"user:d-{queue}")
    assert {c.run_id for c in store.claim("w1", queues=[queue], lease=LEASE, limit=2)} == {
        more[0],
        more[2],
    }


def test_a_requeued_unit_gets_a_fresh_turn(store: Store, queue: str) -> None:
    # A's one run is claimed (turn 0) while B queues three (turns 0, 1, 2); released, A's unit
    # is queued again behind B's first: its turn is A's load then, not the 0 it had.
    (a,) = submitted(store, queue, f"user:ra-{queue}")
    first = claim_one(store, queue)
    assert first.run_id == a
    b = submitted(store, queue, f"user:rb-{queue}", 3)
    assert store.release(first, Report())
    order = [claim_one(store, queue, f"w{n}").run_id for n in range(4)]
    assert order == [b[0], a, b[1], b[2]]


def test_another_submitters_run_interleaves_with_a_maps_batches(store: Store, queue: str) -> None:
    (mapping,) = submitted(store, queue, f"user:map-{queue}")
    run_claim = claim_one(store, queue, "walker")
    assert run_claim.run_id == mapping
    specs = [BatchSpec(n, 10 * n - 9, 10, "runs/x/data.jsonl", 100 * n, None) for n in range(1, 11)]
    new_map = NewMap("check", 0, FINGERPRINT, "continue", 100, specs)
    assert store.start_map(run_claim, new_map, Report(progress_done=0, progress_total=100))
    (one,) = submitted(store, queue, f"user:one-{queue}")
    # The map's ten batch units have turns load, load + 1, ...; the other run's is 0, so it is
    # taken within the first two claims (one round), not after the ten batches.
    claims = [claim_one(store, queue, f"w{n}") for n in range(4)]
    assert one in [c.run_id for c in claims[:2]]
    assert [c.kind for c in claims if c.run_id != one] == [UnitKind.BATCH] * 3


def test_higher_priority_runs_are_claimed_first(store: Store, queue: str) -> None:
    low = submitted(store, queue, f"user:p-{queue}", 2)
    (urgent,) = submitted(store, queue, f"user:p-{queue}", priority=5)
    (lowest,) = submitted(store, queue, f"user:q-{queue}", priority=-1)
    order = [claim_one(store, queue).run_id for _ in range(4)]
    assert order == [urgent, *low, lowest]


def test_a_run_past_the_concurrent_quota_is_refused_and_nothing_is_stored(
    store: Store, queue: str
) -> None:
    who = f"user:quota-{queue}"
    limits = QuotaLimits(concurrent=2)
    submitted(store, queue, who, 2, quota=replace(limits, runs=2))
    with pytest.raises(QuotaExceededError):
        submitted(store, queue, who, quota=limits)
    with pytest.raises(QuotaExceededError):  # a bulk submission counts all its runs
        submitted(store, queue, who, 3, quota=replace(limits, concurrent=4, runs=3))
    usage = store.quota_usage(who)
    assert (usage.concurrent, usage.runs_today) == (2, 2)
    assert len(store.claim("w1", queues=[queue], lease=LEASE, limit=10)) == 2
    # Another submitter has a quota of its own.
    submitted(store, queue, f"user:other-{queue}", quota=limits)
    # An ended run frees its place.
    claim = store.claim("w1", queues=[queue], lease=LEASE)[0]
    assert store.finish(claim, RunState.SUCCEEDED, Report())
    first = store.quota_usage(who)
    assert first.concurrent == 2  # the other submitter's run ended, not one of these
    assert first.oldest_today is not None and first.next_expiry is not None


def test_the_daily_and_storage_quotas_count_runs_and_bytes(store: Store, queue: str) -> None:
    who = f"user:daily-{queue}"
    submitted(store, queue, who, 3, quota=QuotaLimits(per_day=3, runs=3))
    with pytest.raises(QuotaExceededError):
        submitted(store, queue, who, quota=QuotaLimits(per_day=3))
    assert store.quota_usage(who).storage_bytes == 3 * INPUT.size
    with pytest.raises(QuotaExceededError):
        submitted(store, queue, who, quota=QuotaLimits(storage_bytes=3 * INPUT.size, new_bytes=1))
    submitted(store, queue, who, quota=QuotaLimits(storage_bytes=4 * INPUT.size, new_bytes=5))
    assert store.quota_usage(who).runs_today == 4


def test_two_submissions_racing_for_the_last_place_cannot_both_pass(
    store: Store, queue: str
) -> None:
    who = f"user:race-{queue}"
    limits = QuotaLimits(concurrent=1)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def submit() -> None:
        barrier.wait()
        try:
            submitted(store, queue, who, quota=limits)
            results.append("stored")
        except QuotaExceededError:
            results.append("refused")
        finally:
            store.end_thread()  # each thread has its own connection, as a process would

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["refused", "refused", "refused", "stored"]
    assert store.quota_usage(who).concurrent == 1


def test_writes_after_fenced_ones_still_write(store: Store, queue: str) -> None:
    # On PostgreSQL the writes are prepared after a few uses, and a fenced write is a failed
    # pipeline: the statements it was preparing must not be taken for prepared afterwards.
    for _ in range(5):
        run_id = new_run(store, queue)
        claim = claim_one(store, queue)
        assert store.finish(claim, RunState.SUCCEEDED, Report(), None)
        assert not store.finish(claim, RunState.FAILED, Report(), Failure("late"))
        assert store.get_run(run_id).state == RunState.SUCCEEDED
    run_id = new_run(store, queue)
    assert store.finish(claim_one(store, queue), RunState.SUCCEEDED, Report(), None)
    assert store.get_run(run_id).state == RunState.SUCCEEDED


@pytest.mark.postgres
def test_postgres_prepares_the_writes_a_connection_repeats(
    databases: dict[str, Any], queue: str
) -> None:
    if not databases["pg_url"]:
        service_absent(databases["pg_reason"])
    from gristmill.server.store import DjangoStore

    store = DjangoStore("postgres")
    try:
        for _ in range(4):
            new_run(store, queue)
            assert store.finish(claim_one(store, queue), RunState.SUCCEEDED, Report(), None)
        prepared = store.sql.raw().execute("SELECT statement FROM pg_prepared_statements")
        statements = [row[0] for row in prepared.fetchall()]
        assert any("gristmill_claim" in text for text in statements), statements
        assert any("fenced" in text for text in statements), statements
    finally:
        store.close()

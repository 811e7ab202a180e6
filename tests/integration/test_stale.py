"""Stale results on each database: the run page queues their recomputation once, shows the old
results marked stale with the reasons meanwhile, then the fresh ones; the REST API reports the
same without queuing anything.

A task's code changing is simulated as in ``test_engine.py``: the same pipeline built again with
another ``version``, offered by a copy of the test's service. Recomputations run in this process
with the inline executor.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from gristmill import Inputs, Pipeline, RunContext, Task, task
from gristmill.app.service import Service, set_default_service
from gristmill.app.staleness import check, refresh
from gristmill.app.submission import get_run, submit
from gristmill.authoring.registry import Registry
from gristmill.authoring.tasks import PreviousResult
from gristmill.engine.planner import plan
from gristmill.executors.inline import run_inline
from gristmill.states import RunState, StepState
from gristmill.store.records import Report, StepOutcome
from tests.integration.test_web import Node, page, run_page

if TYPE_CHECKING:
    from django.test import Client

NOTICE = (
    "Some results of this run are out of date, so they are being recomputed. Until the new ones "
    "are ready, the old ones are shown below, each marked stale with the reason."
)


def versioned(version: str) -> Pipeline:
    """Three steps; the second has an explicit version, and the third reads the second."""

    @task(title="Count", uses=())
    def count(run: RunContext) -> dict[str, int]:
        return {"words": 3}

    @task(title="Report", version=version, uses=())
    def report(run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        return {"made by": f"version {version}", "words": upstream["count"]["words"]}

    @task(title="Summary", needs=["report"], uses=())
    def summary(run: RunContext, upstream: Mapping[str, Any]) -> str:
        return f"summary of {upstream['report']['made by']}"

    return Pipeline("versioned", [count, report, summary], inputs=Inputs(min_count=0))


class Unsure(Task):
    """Cannot tell whether its result is current."""

    title = "Unsure"

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, int]:
        return {"answer": 42}

    def is_needed(self, run: RunContext, previous: PreviousResult | None) -> bool:
        if previous is None:
            return True
        raise ZeroDivisionError("division by zero")


class Eager(Task):
    """Asks to be run again whenever it is asked."""

    title = "Eager"

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, int]:
        return {"attempt": run.attempt}

    def is_needed(self, run: RunContext, previous: PreviousResult | None) -> bool:
        return True


def with_pipeline(service: Service, pipeline: Pipeline) -> Service:
    """The test's service, offering ``pipeline`` only."""
    return replace(service, registry=Registry([pipeline]))


def offering(service: Service, pipeline: Pipeline) -> Service:
    """The test's service offering ``pipeline``, made the one the pages use (the ``web``
    fixture puts the test's own back afterwards)."""
    changed = with_pipeline(service, pipeline)
    set_default_service(changed)
    return changed


def succeeded(service: Service, pipeline: Pipeline) -> str:
    """The id of a run of ``pipeline`` that has succeeded."""
    offered = with_pipeline(service, pipeline)
    run_id = submit(pipeline.name, service=offered)
    assert run_inline(offered, run_id) == RunState.SUCCEEDED
    return run_id


def requeues(service: Service, run_id: str) -> list[str]:
    return [
        line.text
        for line in service.store.read_log(run_id)
        if line.text.startswith("queued again: ")
    ]


def stale_marks(html: Node) -> dict[str, list[str]]:
    """The reasons shown for each result marked stale, by the result's element id."""
    marked = {}
    for result in html.select("article.step-result"):
        marks = result.texts("h3 .stale-mark")
        if "stale" in result.attrs["class"].split() or marks:
            assert marks == ["stale"]
            assert result.texts(".stale-reasons p") == ["Out of date because:"]
            marked[result.attrs["id"]] = result.texts(".stale-reasons li")
    return marked


def results(html: Node) -> dict[str, list[str]]:
    """The cells of each result shown, by the result's element id."""
    return {r.attrs["id"]: r.texts("td") for r in html.select("article.step-result")}


# -- the run page ---------------------------------------------------------------------------


def test_a_current_run_shows_no_stale_marks_and_is_not_queued_again(
    service: Service, web: Client
) -> None:
    run_id = succeeded(service, versioned("1"))
    offering(service, versioned("1"))
    html = run_page(web, run_id)
    assert html.one("#run-state").text == "succeeded"
    assert stale_marks(html) == {}
    assert html.select(".step-stale") == [] and html.select(".notice") == []
    assert results(html) == {
        "result-count": ["3"],
        "result-report": ["version 1", "3"],
        "result-summary": ["summary of version 1"],
    }
    assert get_run(run_id, service=service).state == RunState.SUCCEEDED
    assert requeues(service, run_id) == []


def test_a_new_version_marks_the_old_results_stale_and_queues_the_run_once(
    service: Service, web: Client
) -> None:
    run_id = succeeded(service, versioned("1"))
    offering(service, versioned("2"))
    first, second = run_page(web, run_id), run_page(web, run_id)
    for html in (first, second):
        assert html.one("main#run").attrs["data-state"] == "queued"
        assert html.one("#run-state").text == "queued"
        assert html.texts("#stale-notice") == [NOTICE]
        assert [s.attrs["src"] for s in html.select("script")] == ["/static/gristmill/run.js"]
        assert html.texts("#run-stage") == ["Waiting for a worker."]
        assert stale_marks(html) == {
            "result-report": ["version of `Report` 1 → 2"],
            "result-summary": ["upstream step `report` was recomputed"],
        }
        assert results(html) == {
            "result-count": ["3"],
            "result-report": ["version 1", "3"],
            "result-summary": ["summary of version 1"],
        }
        marks = {m.attrs["data-attempt"]: m.text for m in html.select("ol#steps .step-stale")}
        assert marks == {"1": "stale"}
        assert [s.attrs["id"] for s in html.select("ol#steps li") if s.select(".step-stale")] == [
            "step-report",
            "step-summary",
        ]
        assert html.select("#outputs") == []  # the files come with the new results
    assert requeues(service, run_id) == ["queued again: stale results: `report`, `summary`"]


def test_once_recomputed_the_page_shows_the_fresh_results_with_no_marks(
    service: Service, web: Client
) -> None:
    run_id = succeeded(service, versioned("1"))
    v2 = offering(service, versioned("2"))
    run_page(web, run_id)
    assert run_inline(v2, run_id) == RunState.SUCCEEDED
    html = run_page(web, run_id)
    assert html.one("#run-state").text == "succeeded"
    assert stale_marks(html) == {}
    assert html.select(".step-stale") == [] and html.select(".notice") == []
    assert results(html) == {
        "result-count": ["3"],
        "result-report": ["version 2", "3"],
        "result-summary": ["summary of version 2"],
    }
    assert html.texts("ol#steps .step-attempt") == ["attempt 1", "attempt 2", "attempt 2"]
    assert html.select("script") == []
    assert len(requeues(service, run_id)) == 1


def test_while_recomputing_the_page_marks_only_the_steps_not_yet_recomputed(
    service: Service, web: Client
) -> None:
    run_id = succeeded(service, versioned("1"))
    v2 = offering(service, versioned("2"))
    run_page(web, run_id)
    # A worker has recomputed `report` and is now on `summary`.
    (claim,) = service.store.claim("stale-test", queues=None, lease=30, run_id=run_id)
    run, steps = service.store.get_run_and_steps(run_id)
    plans = plan(v2.registry.get("versioned"), run, steps, v2.storage)
    new = {p.name: p.fingerprint for p in plans}
    now = time.time()
    result = json.dumps({"made by": "version 2", "words": 3})
    outcome = StepOutcome(
        "report", 1, StepState.SUCCEEDED, result, new["report"].to_dict(), now, now
    )
    try:
        assert service.store.save_step(claim, outcome, Report(current_step="summary"), lease=30)
        html = run_page(web, run_id)
    finally:
        service.store.finish(claim, RunState.CANCELLED, Report())
    assert html.one("#run-state").text == "running"
    assert html.one("#step-summary").attrs["class"] == "step state-running"
    assert html.texts("#stale-notice") == [NOTICE]
    assert stale_marks(html) == {"result-summary": ["upstream step `report` was recomputed"]}
    assert results(html) == {
        "result-count": ["3"],
        "result-report": ["version 2", "3"],
        "result-summary": ["summary of version 1"],  # the old result of the running step
    }
    assert [s.attrs["id"] for s in html.select("ol#steps li") if s.select(".step-stale")] == [
        "step-summary"
    ]


def test_a_task_whose_is_needed_raises_leaves_the_results_shown_as_they_are(
    service: Service, web: Client, caplog: pytest.LogCaptureFixture
) -> None:
    unsure = Pipeline("unsure", [Unsure], inputs=Inputs(min_count=0))
    run_id = succeeded(service, unsure)
    offering(service, unsure)
    with caplog.at_level(logging.ERROR, logger="gristmill.app.staleness"):
        response = web.get(f"/runs/{run_id}/")
    assert response.status_code == 200
    (record,) = caplog.records
    reference = record.getMessage().rsplit(" ", 1)[-1].rstrip(")")
    assert record.getMessage() == (
        f"the staleness check of run {run_id} failed (reference {reference})"
    )
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    html = page(response)
    assert html.one("#run-state").text == "succeeded"
    assert html.texts("#stale-unchecked") == [
        "Whether these results are up to date could not be checked (internal error, reference "
        f"{reference}); they are shown as they are."
    ]
    assert results(html) == {"result-Unsure": ["42"]}
    assert stale_marks(html) == {} and html.select(".step-stale") == []
    assert requeues(service, run_id) == []


def test_a_run_whose_pipeline_is_no_longer_offered_is_left_as_it_is(
    service: Service, web: Client
) -> None:
    run_id = succeeded(service, versioned("1"))
    offering(service, Pipeline("other", [Eager], inputs=Inputs(min_count=0)))
    html = run_page(web, run_id)
    assert html.one("#run-state").text == "succeeded"
    assert html.select(".notice") == [] and html.select(".step-stale") == []
    assert requeues(service, run_id) == []


def test_a_task_asking_to_run_again_is_not_requeued_by_the_reload_that_shows_its_result(
    service: Service, web: Client
) -> None:
    from gristmill.server.models import Run

    eager = Pipeline("eager", [Eager], inputs=Inputs(min_count=0))
    run_id = succeeded(service, eager)
    offering(service, eager)
    html = run_page(web, run_id)  # as run.js reloads the page when the run ends
    assert html.one("#run-state").text == "succeeded"
    assert stale_marks(html) == {"result-Eager": ["the task asked to be run again"]}
    assert requeues(service, run_id) == []
    alias = service.store.alias  # type: ignore[attr-defined]
    ended = datetime.now(UTC) - timedelta(minutes=2)
    Run.objects.using(alias).filter(id=run_id).update(finished_at=ended)
    assert run_page(web, run_id).one("#run-state").text == "queued"
    assert requeues(service, run_id) == ["queued again: stale results: `Eager`"]


# -- concurrent views ---------------------------------------------------------------------


def test_views_at_the_same_moment_queue_the_recomputation_once(service: Service) -> None:
    from django.db import connections

    run_id = succeeded(service, versioned("1"))
    v2 = with_pipeline(service, versioned("2"))
    start = threading.Barrier(4)
    answers: list[Any] = []

    def view() -> None:
        try:
            start.wait(10)
            answers.append(refresh(v2, run_id))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=view) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [a.queued for a in answers].count(True) == 1
    assert {a.state for a in answers} == {RunState.QUEUED}
    assert all(a.recomputing for a in answers)
    assert requeues(service, run_id) == ["queued again: stale results: `report`, `summary`"]


# -- the REST API ---------------------------------------------------------------------------


def test_the_results_api_reports_stale_steps_and_queues_nothing(
    service: Service, web: Client
) -> None:
    run_id = succeeded(service, versioned("1"))
    offering(service, versioned("2"))
    response = web.get(f"/api/v1/runs/{run_id}/results")
    assert response.status_code == 200
    assert response.json() == {
        "state": "succeeded",
        "steps": [
            {
                "name": "count",
                "title": "Count",
                "state": "succeeded",
                "context": {"words": 3},
                "stale": False,
                "stale_reasons": [],
            },
            {
                "name": "report",
                "title": "Report",
                "state": "succeeded",
                "context": {"made by": "version 1", "words": 3},
                "stale": True,
                "stale_reasons": ["version of `Report` 1 → 2"],
            },
            {
                "name": "summary",
                "title": "Summary",
                "state": "succeeded",
                "context": {"result": "summary of version 1"},
                "stale": True,
                "stale_reasons": ["upstream step `report` was recomputed"],
            },
        ],
    }
    assert get_run(run_id, service=service).state == RunState.SUCCEEDED
    assert requeues(service, run_id) == []


def test_the_results_api_of_a_current_run_marks_nothing_stale(
    service: Service, web: Client
) -> None:
    run_id = succeeded(service, versioned("1"))
    offering(service, versioned("1"))
    steps = web.get(f"/api/v1/runs/{run_id}/results").json()["steps"]
    assert [(s["name"], s["stale"], s["stale_reasons"]) for s in steps] == [
        ("count", False, []),
        ("report", False, []),
        ("summary", False, []),
    ]


def test_a_run_not_yet_finished_has_no_stale_steps(service: Service, web: Client) -> None:
    served = offering(service, versioned("1"))
    run_id = submit("versioned", service=served)
    steps = web.get(f"/api/v1/runs/{run_id}/results").json()["steps"]
    assert [(s["state"], s["stale"]) for s in steps] == [("pending", False)] * 3
    assert run_page(web, run_id).select(".step-stale") == []


def test_the_results_api_answers_when_a_check_fails(
    service: Service, web: Client, caplog: pytest.LogCaptureFixture
) -> None:
    unsure = Pipeline("unsure", [Unsure], inputs=Inputs(min_count=0))
    run_id = succeeded(service, unsure)
    offering(service, unsure)
    with caplog.at_level(logging.ERROR, logger="gristmill.app.staleness"):
        response = web.get(f"/api/v1/runs/{run_id}/results")
    assert response.status_code == 200
    (step,) = response.json()["steps"]
    assert (step["context"], step["stale"], step["stale_reasons"]) == ({"answer": 42}, False, [])
    (record,) = caplog.records
    assert record.getMessage().startswith(f"the staleness check of run {run_id} failed ")


# -- staff accepting a stale result -----------------------------------------------------------


def signed_in(web: Client, *, staff: bool) -> Client:
    from django.contrib.auth import get_user_model

    name = f"{'staff' if staff else 'user'}-{uuid.uuid4().hex[:8]}"
    web.force_login(get_user_model().objects.create_user(name, is_staff=staff))
    return web


def test_staff_accept_a_stale_result_as_current(service: Service, web: Client) -> None:
    run_id = succeeded(service, versioned("1"))
    offered = offering(service, versioned("2"))
    staff = signed_in(web, staff=True)
    response = staff.post(f"/api/v1/runs/{run_id}/steps/report/accept")
    assert response.status_code == 200
    assert response.json() == {
        "name": "report",
        "title": "Report",
        "state": "succeeded",
        "context": {"made by": "version 1", "words": 3},
        "stale": False,
        "stale_reasons": [],
    }
    # The step that reads it keeps its own staleness, until it is accepted too.
    assert dict(check(offered, run_id).reasons) == {
        "summary": ("upstream step `report` was recomputed",)
    }
    assert staff.post(f"/api/v1/runs/{run_id}/steps/summary/accept").status_code == 200
    assert not check(offered, run_id).stale
    assert requeues(service, run_id) == []


def test_only_staff_accept_a_stale_result(service: Service, web: Client) -> None:
    run_id = succeeded(service, versioned("1"))
    offered = offering(service, versioned("2"))
    response = signed_in(web, staff=False).post(f"/api/v1/runs/{run_id}/steps/report/accept")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "only staff can accept a stale result as current"
    assert "report" in check(offered, run_id).reasons


def test_accepting_a_current_result_is_a_conflict(service: Service, web: Client) -> None:
    run_id = succeeded(service, versioned("1"))
    offering(service, versioned("1"))
    response = signed_in(web, staff=True).post(f"/api/v1/runs/{run_id}/steps/report/accept")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "the result of step 'report' is not stale; there is nothing to accept"
    )


def test_accepting_a_step_the_pipeline_does_not_have_is_not_found(
    service: Service, web: Client
) -> None:
    run_id = succeeded(service, versioned("1"))
    offering(service, versioned("2"))
    response = signed_in(web, staff=True).post(f"/api/v1/runs/{run_id}/steps/nope/accept")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "the pipeline 'versioned' has no step 'nope'"

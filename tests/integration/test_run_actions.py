"""What can be done to a run, on each database: its page's buttons (cancel, run again, pin,
delete) and the API's pin (``PUT``/``DELETE /api/v1/runs/{id}/pin``), with who may do what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.engine import retention
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.integration.test_access import browser, error_of, make_user
from tests.integration.test_web import page

API = "/api/v1"
LATER = datetime.now(UTC) + timedelta(days=8)  # past the test pipelines' 7 days


def ended(service: Service, owner: Any = None) -> str:
    run_id = submit("trivial", service=service, owner_id=owner.pk if owner else None)
    run_inline(service, run_id)
    return run_id


def press(client: Any, run_id: str, action: str) -> tuple[Any, Any]:
    """Press one of the run page's buttons; return the answer and the page it leads to."""
    answer = client.post(f"/runs/{run_id}/{action}/")
    assert answer.status_code == 303
    assert answer["Location"] == f"/runs/{run_id}/"
    return answer, page(client.get(answer["Location"]))


def buttons(html: Any) -> list[str]:
    return [node.attrs["id"] for node in html.select("#run-actions button")]


# -- the page's buttons -------------------------------------------------------------------


def test_a_queued_run_offers_cancel_and_is_cancelled(service: Service, site: None) -> None:
    run_id = submit("trivial", service=service)
    client = browser()
    assert buttons(page(client.get(f"/runs/{run_id}/"))) == ["cancel"]
    _, html = press(client, run_id, "cancel")
    assert html.texts("#messages li") == ["Cancelled."]
    assert get_run(run_id, service=service).state == RunState.CANCELLED
    assert buttons(html) == ["rerun", "delete-confirm"]


def test_an_ended_run_cannot_be_cancelled_and_the_page_says_why(
    service: Service, site: None
) -> None:
    run_id = ended(service)
    _, html = press(browser(), run_id, "cancel")
    assert html.texts("#messages li.message-error") == [
        "The run has already ended (succeeded); there is nothing to cancel."
    ]


def test_run_again_queues_an_ended_run(service: Service, site: None) -> None:
    run_id = ended(service)
    _, html = press(browser(), run_id, "rerun")
    assert html.texts("#messages li") == [
        "Queued again: stale results are recomputed, current ones kept."
    ]
    assert get_run(run_id, service=service).state == RunState.QUEUED


REPEATS = (
    "Running it again will most likely fail the same way: the step failed on what it read, "
    "and its code, parameters and inputs have not changed since. Change the pipeline or "
    "submit new inputs first."
)


def failed(service: Service, pipeline: str) -> str:
    run_id = submit(pipeline, service=service)
    assert run_inline(service, run_id) == RunState.FAILED
    return run_id


def rerun_offer(run_id: str) -> tuple[list[str], str]:
    """What the failed run's page says before its Run again button, and the button's text."""
    html = page(browser().get(f"/runs/{run_id}/"))
    return html.texts("#rerun-repeats"), " ".join(html.one("#rerun").text.split())


def test_a_failure_that_would_repeat_is_said_before_run_again(service: Service, site: None) -> None:
    run_id = failed(service, "failing")
    assert rerun_offer(run_id) == ([REPEATS], "Run again anyway")


def test_a_task_error_after_a_code_change_is_offered_run_again_plainly(
    service: Service, site: None
) -> None:
    from gristmill.server.models import Step

    run_id = failed(service, "failing")
    steps = Step.objects.using(service.store.alias).filter(run_id=run_id, name="bad_data")  # type: ignore[attr-defined]
    (step,) = steps
    steps.update(fingerprint={**step.fingerprint, "code": "the code before the fix"})
    assert rerun_offer(run_id) == ([], "Run again")


def test_an_internal_error_is_offered_run_again_plainly(service: Service, site: None) -> None:
    assert rerun_offer(failed(service, "internal")) == ([], "Run again")


def test_delete_removes_the_run_and_its_page_says_so(service: Service, site: None) -> None:
    owner = make_user()
    run_id = ended(service, owner)
    _, html = press(browser(owner), run_id, "delete")
    assert html.texts("#messages li") == ["Deleted: the run's files, results and log are gone."]
    assert html.one("#run-error").text.endswith("Deleted by its owner.")
    assert buttons(html) == []
    assert not service.storage.run_dir(run_id).exists()


def test_the_owner_pins_a_run_so_that_it_outlives_its_retention(
    service: Service, site: None
) -> None:
    owner = make_user()
    run_id = ended(service, owner)
    client = browser(owner)
    assert buttons(page(client.get(f"/runs/{run_id}/"))) == ["rerun", "pin", "delete-confirm"]
    _, html = press(client, run_id, "pin")
    assert html.texts("#messages li") == ["Pinned: the run is kept until it is unpinned."]
    assert html.one("#run-expiry").text == "Pinned: kept until it is unpinned."
    assert html.one("#pin").text == "Unpin"
    retention.prune(service.store, service.storage, now=LATER)
    assert get_run(run_id, service=service).state == RunState.SUCCEEDED

    _, html = press(client, run_id, "unpin")
    assert html.one("#run-expiry").text.startswith("Kept until ")
    retention.prune(service.store, service.storage, now=LATER)
    assert get_run(run_id, service=service).state == RunState.EXPIRED


def test_only_staff_may_pin_a_run_made_without_signing_in(service: Service, site: None) -> None:
    run_id = ended(service)
    assert "pin" not in buttons(page(browser().get(f"/runs/{run_id}/")))
    someone = browser(make_user())
    assert "pin" not in buttons(page(someone.get(f"/runs/{run_id}/")))
    _, html = press(someone, run_id, "pin")
    assert html.texts("#messages li.message-error") == [
        "Only staff can pin a run submitted without signing in."
    ]
    _, html = press(browser(make_user(staff=True)), run_id, "pin")
    assert html.texts("#messages li") == ["Pinned: the run is kept until it is unpinned."]


def test_an_anonymous_visitor_pressing_pin_is_asked_to_sign_in(
    service: Service, site: None
) -> None:
    run_id = ended(service)
    answer = browser().post(f"/runs/{run_id}/pin/")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/sign-in/?next=")


def test_the_buttons_of_someone_elses_run_find_nothing(service: Service, site: None) -> None:
    run_id = ended(service, make_user())
    for action in ("cancel", "rerun", "delete", "pin"):
        assert browser(make_user()).post(f"/runs/{run_id}/{action}/").status_code == 404
    assert get_run(run_id, service=service).state == RunState.SUCCEEDED


def test_the_buttons_need_post_and_the_csrf_token(service: Service, site: None) -> None:
    owner = make_user()
    run_id = ended(service, owner)
    assert browser(owner).get(f"/runs/{run_id}/delete/").status_code == 405
    strict = browser(owner, enforce_csrf_checks=True)
    assert strict.post(f"/runs/{run_id}/delete/").status_code == 403
    assert browser(owner).post(f"/runs/{run_id}/explode/").status_code == 404
    assert get_run(run_id, service=service).state == RunState.SUCCEEDED


# -- the API's pin ------------------------------------------------------------------------


def test_the_api_pins_and_unpins_a_users_run(service: Service, site: None) -> None:
    owner = make_user()
    run_id = ended(service, owner)
    client = browser(owner)
    assert client.get(f"{API}/runs/{run_id}").json()["pinned"] is False
    answer = client.put(f"{API}/runs/{run_id}/pin")
    assert (answer.status_code, answer.json()) == (200, {"pinned": True})
    assert client.get(f"{API}/runs/{run_id}").json()["pinned"] is True
    answer = client.delete(f"{API}/runs/{run_id}/pin")
    assert (answer.status_code, answer.json()) == (200, {"pinned": False})
    assert client.get(f"{API}/runs/{run_id}").json()["pinned"] is False


def test_the_api_says_who_may_pin(service: Service, site: None) -> None:
    anonymous_run = ended(service)
    assert error_of(browser().put(f"{API}/runs/{anonymous_run}/pin")) == (
        401,
        "sign in to pin a run; send an API token (Authorization: Bearer ...)",
    )
    assert error_of(browser(make_user()).put(f"{API}/runs/{anonymous_run}/pin")) == (
        403,
        "only staff can pin a run submitted without signing in",
    )
    staff = browser(make_user(staff=True))
    assert staff.put(f"{API}/runs/{anonymous_run}/pin").json() == {"pinned": True}
    private_run = ended(service, make_user())
    assert browser(make_user()).put(f"{API}/runs/{private_run}/pin").status_code == 404


def test_an_expired_run_cannot_be_pinned(service: Service, site: None) -> None:
    owner = make_user()
    run_id = ended(service, owner)
    client = browser(owner)
    assert client.delete(f"{API}/runs/{run_id}").status_code == 204
    assert error_of(client.put(f"{API}/runs/{run_id}/pin")) == (
        409,
        "the run has expired and its files are gone; nothing to keep",
    )

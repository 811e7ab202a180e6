"""Notifications when a run ends, sent by live workers to a real SMTP server (aiosmtpd) and a
real HTTP receiver, both started by the tests on free ports."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import wait
from gristmill.states import RunState
from tests.integration.conftest import Workers, serving, wait_until
from tests.integration.test_access import bearer, browser, make_user

API = "/api/v1"
SECRET = "a webhook key of some length"
SITE = "https://mill.example"


# -- a real SMTP server and a real HTTP receiver ------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


@dataclass
class Call:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver: answers each call with the next status of ``answers`` (then 200),
    and, while ``holding`` is set, keeps the caller waiting until it is released."""

    url: str
    calls: list[Call] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    holding: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.calls.append(Call(dict(self.headers.items()), body))
            state.arrived.set()
            if state.holding:
                state.release.wait(30)
                return  # the caller is gone by now
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def notifying(service: Service, smtp: tuple[int, Mailbox], receiver: Receiver) -> Iterator[Service]:
    """The test's service with e-mail, webhooks (loopback allowed) and quick retries, serving
    the site."""
    settings = replace(
        service.settings,
        site_url=SITE,
        email_host="127.0.0.1",
        email_port=smtp[0],
        email_from="mill@example.org",
        webhook_secret=SECRET,
        fetch_allow=("127.0.0.1/32",),
        notify_attempts=3,
        notify_backoff=0.05,
        notify_timeout=5.0,  # an answer, not a timeout, on a loaded machine; a lease of 11 s
    )
    notifying = Service(settings, service.store, service.registry, service.storage)
    with serving(notifying):
        yield notifying


@pytest.fixture
def live(notifying: Service) -> Iterator[Workers]:
    pool = Workers(notifying)
    yield pool
    pool.stop_all()


def make_mailed_user() -> Any:
    user = make_user()
    user.email = f"{user.username}@example.org"
    user.save()
    return user


def submit(pipeline: str, body: dict[str, Any], user: Any = None) -> str:
    headers = bearer(user) if user is not None else {}
    response = browser().post(
        f"{API}/pipelines/{pipeline}/runs",
        json.dumps(body),
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 201, response.json()
    return str(response.json()["id"])


def log_of(run_id: str, user: Any = None) -> list[dict[str, Any]]:
    headers = bearer(user) if user is not None else {}
    response = browser().get(f"{API}/runs/{run_id}/notifications", headers=headers)
    assert response.status_code == 200, response.json()
    return list(response.json())


def settled(run_id: str, user: Any = None) -> list[dict[str, Any]] | None:
    log = log_of(run_id, user)
    return log if log and all(n["state"] != "pending" for n in log) else None


# -- e-mail ---------------------------------------------------------------------------------


def test_an_email_asked_for_arrives_when_the_run_succeeds(
    notifying: Service, live: Workers, smtp: tuple[int, Mailbox]
) -> None:
    user = make_mailed_user()
    live.start(1)
    run_id = submit("trivial", {"params": {"value": 3}, "notify_email": True}, user)
    wait(run_id, timeout=30, service=notifying)
    _, box = smtp
    (message,) = wait_until(lambda: box.messages, message="the e-mail")
    assert message["To"] == user.email
    assert message["From"] == "mill@example.org"
    assert message["Subject"] == "Trivial: your run succeeded"
    text = message.get_payload()
    assert f"See it at {SITE}/runs/{run_id}/" in text
    assert wait_until(lambda: settled(run_id, user))[0]["state"] == "sent"


def test_the_email_of_a_failed_run_says_what_went_wrong(
    notifying: Service, live: Workers, smtp: tuple[int, Mailbox]
) -> None:
    user = make_mailed_user()
    live.start(1)
    run_id = submit("failing", {"notify_email": True}, user)
    assert wait(run_id, timeout=30, service=notifying).state == RunState.FAILED
    (message,) = wait_until(lambda: smtp[1].messages, message="the e-mail")
    assert message["Subject"] == "Failing: your run failed"
    assert "What went wrong: row 3 has no 'id' field" in message.get_payload()


def test_a_users_default_emails_them_unless_the_run_says_not_to(
    notifying: Service, live: Workers, smtp: tuple[int, Mailbox]
) -> None:
    user = make_mailed_user()
    answer = browser().put(
        f"{API}/account/notifications",
        json.dumps({"email_runs": True}),
        content_type="application/json",
        headers=bearer(user),
    )
    assert answer.json() == {"email_runs": True, "email": user.email, "email_available": True}
    quiet = submit("trivial", {"notify_email": False}, user)
    told = submit("trivial", {}, user)
    assert log_of(quiet, user) == []
    assert [(n["channel"], n["origin"]) for n in log_of(told, user)] == [("email", "user")]
    live.start(1)
    wait_until(lambda: smtp[1].messages, message="the e-mail")
    assert [m["To"] for m in smtp[1].messages] == [user.email]


def test_an_email_cannot_be_asked_for_without_an_address(notifying: Service) -> None:
    response = browser().post(
        f"{API}/pipelines/trivial/runs",
        json.dumps({"notify_email": True}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "notify_email": ["sign in to be e-mailed when the run ends"]
    }


# -- webhooks -------------------------------------------------------------------------------


def test_a_webhook_call_arrives_signed_with_the_runs_outcome(
    notifying: Service, live: Workers, receiver: Receiver
) -> None:
    live.start(1)
    run_id = submit("trivial", {"webhook_url": receiver.url})
    wait(run_id, timeout=30, service=notifying)
    (call,) = wait_until(lambda: receiver.calls, message="the webhook call")
    expected = "sha256=" + hmac.new(SECRET.encode(), call.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(call.headers["X-Gristmill-Signature"], expected)
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["X-Gristmill-Event"] == "run.ended"
    body = json.loads(call.body)
    assert body["event"] == "run.ended"
    run = body["run"]
    assert (run["id"], run["pipeline"], run["state"], run["error"]) == (
        run_id,
        "trivial",
        "succeeded",
        None,
    )
    assert run["url"] == f"{SITE}/runs/{run_id}/"
    assert run["status_url"] == f"{SITE}{API}/runs/{run_id}"
    assert run["finished_at"] is not None


def test_a_receiver_failing_twice_gets_three_attempts_all_logged(
    notifying: Service, live: Workers, receiver: Receiver
) -> None:
    receiver.answers = [500, 500]
    live.start(1)
    run_id = submit("trivial", {"webhook_url": receiver.url})
    wait(run_id, timeout=60, service=notifying)
    (delivery,) = wait_until(lambda: settled(run_id), timeout=60, message="the delivery")
    assert delivery["state"] == "sent"
    assert [(a["number"], a["status_code"]) for a in delivery["attempts"]] == [
        (1, 500),
        (2, 500),
        (3, 200),
    ]
    assert [a["error"] for a in delivery["attempts"]] == [
        "the server answered 500",
        "the server answered 500",
        "",
    ]
    assert len(receiver.calls) == 3
    assert len({call.body for call in receiver.calls}) == 1  # the same message each time
    page = browser().get(f"/runs/{run_id}/").content.decode()
    assert "attempt 1: answered 500" in page
    assert "attempt 3: answered 200" in page


def test_a_webhook_that_always_fails_stops_after_the_attempt_limit(
    notifying: Service, live: Workers, receiver: Receiver
) -> None:
    receiver.answers = [503] * 10
    live.start(1)
    run_id = submit("trivial", {"webhook_url": receiver.url})
    wait(run_id, timeout=60, service=notifying)
    (delivery,) = wait_until(lambda: settled(run_id), timeout=60, message="the delivery")
    assert delivery["state"] == "failed"
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 503]


def test_a_webhook_to_a_private_address_is_refused_at_submission(service: Service) -> None:
    settings = replace(service.settings, webhook_secret=SECRET)
    with serving(Service(settings, service.store, service.registry, service.storage)):
        response = browser().post(
            f"{API}/pipelines/trivial/runs",
            json.dumps({"webhook_url": "http://10.1.2.3/hook"}),
            content_type="application/json",
        )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "webhook_url": [
            "http://10.1.2.3/hook: 10.1.2.3 is not a public address; "
            "only public addresses can be fetched"
        ]
    }


def test_a_host_name_of_a_private_address_is_refused_when_called(
    service: Service, receiver: Receiver
) -> None:
    """Without GRISTMILL_FETCH_ALLOW, "localhost" is looked up when the call is made, found
    private, and not called; the attempt says why."""
    from gristmill.executors.inline import run_inline
    from gristmill.server.notifier import Notifier

    settings = replace(service.settings, webhook_secret=SECRET, notify_attempts=1)
    strict = Service(settings, service.store, service.registry, service.storage)
    url = receiver.url.replace("127.0.0.1", "localhost")
    with serving(strict):
        run_id = submit("trivial", {"webhook_url": url})
        run_inline(strict, run_id)
        Notifier(strict).drain()
        (delivery,) = log_of(run_id)
    assert delivery["state"] == "failed"
    (attempt,) = delivery["attempts"]
    assert attempt["status_code"] is None
    assert "is not a public address; only public addresses can be fetched" in attempt["error"]
    assert receiver.calls == []


def test_a_pipelines_own_webhooks_are_called_with_its_own_key(
    notifying: Service, receiver: Receiver
) -> None:
    from gristmill import Inputs, Pipeline, task
    from gristmill.app.submission import submit as submit_run
    from gristmill.authoring.registry import Registry
    from gristmill.executors.inline import run_inline
    from gristmill.server.access import ANONYMOUS
    from gristmill.server.notifications import Wishes, record
    from gristmill.server.notifier import Notifier

    @task
    def noop(run: Any) -> int:
        return 1

    hooked = Pipeline(
        "hooked",
        [noop],
        inputs=Inputs(min_count=0),
        webhooks=[receiver.url],
        webhook_secret="its own",
    )
    service = Service(notifying.settings, notifying.store, Registry([hooked]), notifying.storage)
    run_id = submit_run(hooked, service=service)
    record(service.settings, run_id, hooked, ANONYMOUS, Wishes())
    run_inline(service, run_id)
    Notifier(service).drain()
    (call,) = receiver.calls
    expected = "sha256=" + hmac.new(b"its own", call.body, hashlib.sha256).hexdigest()
    assert call.headers["X-Gristmill-Signature"] == expected
    assert json.loads(call.body)["run"]["pipeline"] == "hooked"
    # Its URL may hold a key: only staff see it in the delivery log.
    (shown,) = log_of(run_id)
    assert (shown["origin"], shown["target"], shown["state"]) == (
        "pipeline",
        "the pipeline's webhook",
        "sent",
    )
    (to_staff,) = log_of(run_id, make_user(staff=True))
    assert to_staff["target"] == receiver.url


# -- nothing lost ---------------------------------------------------------------------------


def test_a_sender_killed_mid_call_leaves_it_pending_and_another_sends_it(
    notifying: Service, live: Workers, receiver: Receiver
) -> None:
    receiver.holding = True
    first = live.start(1)
    run_id = submit("trivial", {"webhook_url": receiver.url})
    assert receiver.arrived.wait(30), "the first call never came"
    os.killpg(first.pid, signal.SIGKILL)  # the worker, its notifier and all
    first.wait(10)
    (delivery,) = log_of(run_id)
    assert (delivery["state"], delivery["attempts"]) == ("pending", [])

    receiver.holding = False
    receiver.release.set()
    live.start(1)
    (delivery,) = wait_until(lambda: settled(run_id), timeout=30, message="the second sender")
    assert delivery["state"] == "sent"
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    first_call, second_call = receiver.calls
    assert first_call.headers["X-Gristmill-Delivery"] == second_call.headers["X-Gristmill-Delivery"]
    assert first_call.body == second_call.body


# -- the pages ------------------------------------------------------------------------------


def test_the_form_offers_the_email_box_checked_as_the_users_setting(notifying: Service) -> None:
    user = make_mailed_user()
    page = browser(user)
    form = page.get("/pipelines/trivial/").content.decode()
    assert 'id="notify-email" name="gristmill_notify_email">' in form  # unchecked by default

    saved = page.post("/settings/", {"email_runs": "on"})
    assert (saved.status_code, saved["Location"]) == (303, "/settings/")
    assert 'id="email-runs" name="email_runs" checked' in page.get("/settings/").content.decode()
    form = page.get("/pipelines/trivial/").content.decode()
    assert 'id="notify-email" name="gristmill_notify_email" checked>' in form

    told = page.post("/pipelines/trivial/", {"gristmill_notify_email": "on"})
    quiet = page.post("/pipelines/trivial/", {})
    told_id = told["Location"].split("/")[2]
    quiet_id = quiet["Location"].split("/")[2]
    assert [(n["channel"], n["target"]) for n in log_of(told_id, user)] == [("email", user.email)]
    assert log_of(quiet_id, user) == []


def test_the_form_offers_no_email_box_to_anonymous_visitors(notifying: Service) -> None:
    assert "notify-email" not in browser().get("/pipelines/trivial/").content.decode()


def test_a_django_projects_own_email_backend_is_used_without_an_smtp_host(
    service: Service,
) -> None:
    from django.core import mail
    from django.test import override_settings

    from gristmill.executors.inline import run_inline
    from gristmill.server.notifier import Notifier

    user = make_mailed_user()
    with (
        override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"),
        serving(service),
    ):
        run_id = submit("trivial", {"notify_email": True}, user)
        run_inline(service, run_id)
        mail.outbox = []
        Notifier(service).drain()
        (message,) = [m for m in mail.outbox if m.to == [user.email]]
    assert (message.to, message.subject) == ([user.email], "Trivial: your run succeeded")
    assert f"/runs/{run_id}/" in message.body


def test_a_webhook_redirected_to_a_private_address_is_not_followed() -> None:
    """The receiver is allowed (127.0.0.1); where it redirects to (10.0.0.1) is not."""
    from gristmill.engine.fetcher import FetchPolicy, post
    from gristmill.errors import FetchError
    from gristmill.settings import parse_networks

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", "http://10.0.0.1/inside")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    policy = FetchPolicy(max_size=1024, timeout=5, allow=parse_networks("127.0.0.1/32"))
    try:
        with pytest.raises(FetchError) as refused:
            post(url, b"{}", [("Content-Type", "application/json")], policy)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert str(refused.value) == (
        f"{url} (redirected to http://10.0.0.1/inside): 10.0.0.1 is not a public address; "
        "only public addresses can be fetched"
    )


def test_the_sites_webhooks_are_called_for_every_run(
    notifying: Service, receiver: Receiver
) -> None:
    from gristmill.executors.inline import run_inline
    from gristmill.server.notifier import Notifier

    settings = replace(notifying.settings, webhooks=(receiver.url,))
    site = Service(settings, notifying.store, notifying.registry, notifying.storage)
    with serving(site):
        run_id = submit("trivial", {})
        run_inline(site, run_id)
        Notifier(site).drain()
        (shown,) = log_of(run_id)
    assert (shown["origin"], shown["target"], shown["state"]) == (
        "site",
        "the site's webhook",
        "sent",
    )
    (call,) = receiver.calls
    expected = "sha256=" + hmac.new(SECRET.encode(), call.body, hashlib.sha256).hexdigest()
    assert call.headers["X-Gristmill-Signature"] == expected


# -- bulk submissions and the Celery executor -----------------------------------------------


def submit_bulk(pipeline: str, entries: list[dict[str, Any]], user: Any = None) -> Any:
    headers = bearer(user) if user is not None else {}
    return browser().post(
        f"{API}/pipelines/{pipeline}/runs/bulk",
        json.dumps({"entries": entries}),
        content_type="application/json",
        headers=headers,
    )


def test_each_run_of_a_bulk_submission_is_notified_as_its_entry_asks(
    notifying: Service, smtp: tuple[int, Mailbox], receiver: Receiver
) -> None:
    from gristmill.executors.inline import run_inline
    from gristmill.server.models import NotifySettings
    from gristmill.server.notifier import Notifier

    user = make_mailed_user()
    NotifySettings.objects.create(user=user, email_runs=True)
    settings = replace(notifying.settings, webhooks=(f"{receiver.url}?site",))
    site = Service(settings, notifying.store, notifying.registry, notifying.storage)
    entries: list[dict[str, Any]] = [
        {"webhook_url": receiver.url, "notify_email": False},
        {"notify_email": True},
        {"notify_email": False},
        {},
    ]
    with serving(site):
        response = submit_bulk("trivial", entries, user)
        assert response.status_code == 201, response.json()
        run_ids = [run["id"] for run in response.json()["runs"]]
        logs = [log_of(run_id, user) for run_id in run_ids]
        for run_id in run_ids:
            run_inline(site, run_id)
        Notifier(site).drain()
        sent = [settled(run_id, user) for run_id in run_ids]
    assert [[(n["channel"], n["origin"]) for n in log] for log in logs] == [
        [("webhook", "run"), ("webhook", "site")],
        [("email", "run"), ("webhook", "site")],
        [("webhook", "site")],
        [("email", "user"), ("webhook", "site")],
    ]
    assert all(log and {n["state"] for n in log} == {"sent"} for log in sent)
    called = sorted(json.loads(call.body)["run"]["id"] for call in receiver.calls)
    assert called == sorted([run_ids[0], *run_ids])
    assert sorted(m["Subject"] for m in smtp[1].messages) == ["Trivial: your run succeeded"] * 2


def test_a_bulk_entrys_notifications_are_checked_and_refuse_the_whole_bulk(
    notifying: Service,
) -> None:
    from gristmill.server.models import Run

    before = Run.objects.count()
    response = submit_bulk(
        "trivial", [{}, {"webhook_url": "http://10.1.2.3/hook"}, {"notify_email": True}]
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "entries.1.webhook_url": [
            "http://10.1.2.3/hook: 10.1.2.3 is not a public address; "
            "only public addresses can be fetched"
        ],
        "entries.2.notify_email": ["sign in to be e-mailed when the run ends"],
    }
    assert Run.objects.count() == before


@pytest.mark.parametrize("executor", ["celery-redis", "celery-rabbitmq"])
def test_a_celery_worker_sends_the_notifications_of_the_runs_it_ends(
    request: pytest.FixtureRequest,
    notifying: Service,
    live: Workers,
    receiver: Receiver,
    executor: str,
) -> None:
    """``gristmill worker`` with the Celery executor runs a sender beside its Celery worker:
    with no ``gristmill serve`` at all, the webhook is called."""
    from tests.integration.conftest import use_executor

    use_executor(request, live, executor)
    live.start(1)
    run_id = submit("trivial", {"webhook_url": receiver.url})
    assert wait(run_id, timeout=60, service=notifying).state == RunState.SUCCEEDED
    (delivery,) = wait_until(lambda: settled(run_id), timeout=30, message="the delivery")
    assert delivery["state"] == "sent"
    (call,) = receiver.calls
    assert json.loads(call.body)["run"]["id"] == run_id

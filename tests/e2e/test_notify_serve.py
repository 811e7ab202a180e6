"""``gristmill serve`` sends the notifications of the runs its workers end: a webhook call
from the live server to a receiver started by the test."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from gristmill.client import Client
from tests.e2e.conftest import start_server, stop_server
from tests.integration.conftest import wait_until
from tests.integration.test_notifications import Receiver, receiver

__all__ = ["receiver"]  # the fixture

SECRET = "the serve test's key"


def test_serve_calls_a_runs_webhook_when_it_ends(tmp_path: Path, receiver: Receiver) -> None:
    server = start_server(
        tmp_path,
        settings={
            "GRISTMILL_WEBHOOK_SECRET": SECRET,
            "GRISTMILL_FETCH_ALLOW": "127.0.0.1/32",
            "GRISTMILL_SITE_URL": "http://mill.test",
        },
    )
    try:
        with Client(server.url) as program, server.client() as client:
            run_id = program.submit("trivial", webhook_url=receiver.url)["id"]
            (call,) = wait_until(lambda: receiver.calls, timeout=60, message="the webhook call")
            log = wait_until(
                lambda: [
                    n
                    for n in client.get(f"/api/v1/runs/{run_id}/notifications").json()
                    if n["state"] == "sent"
                ],
                message="the delivery to be logged",
            )
    finally:
        stop_server(server.process)
    expected = "sha256=" + hmac.new(SECRET.encode(), call.body, hashlib.sha256).hexdigest()
    assert call.headers["X-Gristmill-Signature"] == expected
    run = json.loads(call.body)["run"]
    assert (run["id"], run["state"], run["url"]) == (
        run_id,
        "succeeded",
        f"http://mill.test/runs/{run_id}/",
    )
    assert [a["status_code"] for a in log[0]["attempts"]] == [200]

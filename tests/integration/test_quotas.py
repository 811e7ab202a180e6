"""Quotas at submission, over the API (single and bulk) and the web form, on each database:
a refusal answers 429 (runs) or 413 (storage) naming the quota, the usage and when it frees
up, and stores nothing; a caller sees its usage in the API and on a page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from gristmill.app.service import Service
from tests.integration.test_access import API, bearer, browser, make_user


@pytest.fixture
def quotas(site: Service) -> Iterator[Any]:
    """Set the site's default quotas for a test: ``quotas(quota_concurrent=2, ...)``."""
    from django.test import override_settings

    held: list[Any] = []

    def apply(**values: int) -> None:
        settings = replace(site.settings, **values)
        held.append(override_settings(GRISTMILL=settings))
        held[-1].enable()

    yield apply
    for override in reversed(held):
        override.disable()


def own_quota(user: Any, **fields: Any) -> None:
    from gristmill.server.models import Quota

    Quota.objects.create(user=user, **fields)


def runs_of(submitter: str) -> int:
    from gristmill.server.models import Run

    return Run.objects.filter(submitter=submitter).count()


def run_dirs(service: Service) -> set[Any]:
    return set((service.storage.root / "runs").glob("*"))


def post(client: Any, path: str, body: Any, **headers: str) -> Any:
    import json

    return client.post(
        f"{API}{path}", json.dumps(body), content_type="application/json", headers=headers
    )


def test_a_user_at_the_concurrent_quota_is_refused_429_and_nothing_is_stored(
    site: Service,
) -> None:
    user = make_user()
    own_quota(user, concurrent=2)
    client, auth = browser(), bearer(user)
    for _ in range(2):
        assert post(client, "/pipelines/trivial/runs", {}, **auth).status_code == 201
    before = run_dirs(site)

    refused = post(client, "/pipelines/trivial/runs", {}, **auth)

    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"
    error = refused.json()["error"]
    assert error["code"] == "throttled"
    assert error["message"] == (
        "quota of concurrent runs: 2 of 2 runs are queued or running, and this run "
        "would pass it; a place frees up when one of them ends"
    )
    assert error["details"] == {"quota.concurrent": [error["message"]]}
    assert runs_of(f"user:{user.pk}") == 2
    assert run_dirs(site) == before
    # A bulk submission counts every entry: one more place is not enough for two.
    own_quota_update(user, concurrent=3)
    bulk = post(client, "/pipelines/trivial/runs/bulk", {"entries": [{}, {}]}, **auth)
    assert bulk.status_code == 429
    assert "2 of 3 runs are queued or running, and these 2 runs" in bulk.json()["error"]["message"]
    assert runs_of(f"user:{user.pk}") == 2
    assert run_dirs(site) == before
    assert (
        post(client, "/pipelines/trivial/runs/bulk", {"entries": [{}]}, **auth).status_code == 201
    )


def own_quota_update(user: Any, **fields: Any) -> None:
    from gristmill.server.models import Quota

    Quota.objects.filter(user=user).update(**fields)


def test_the_usage_is_in_the_api_beside_the_quotas(site: Service, quotas: Any) -> None:
    quotas(quota_runs_per_day=10, quota_storage_mb=5)
    user = make_user()
    client, auth = browser(), bearer(user)
    body = {"inputs": [{"kind": "text", "text": "abcd"}]}
    assert post(client, "/pipelines/trivial/runs", body, **auth).status_code == 201

    usage = client.get(f"{API}/account/usage", headers=auth).json()

    assert usage["submitter"] == f"user:{user.pk}"
    assert (usage["concurrent"], usage["runs_today"], usage["storage_bytes"]) == (1, 1, 4)
    assert usage["quotas"] == {
        "concurrent": None,
        "runs_per_day": 10,
        "storage_bytes": 5 * 1024 * 1024,
    }
    assert usage["next_run_frees_at"] is not None and usage["next_expiry_at"] is not None


def test_inputs_past_the_storage_quota_are_refused_413(site: Service) -> None:
    user = make_user()
    own_quota(user, storage_mb=1)
    client, auth = browser(), bearer(user)
    big = {"inputs": [{"kind": "text", "text": "x" * (700 * 1024)}]}
    assert post(client, "/pipelines/trivial/runs", big, **auth).status_code == 201
    before = run_dirs(site)

    refused = post(client, "/pipelines/trivial/runs", big, **auth)

    assert refused.status_code == 413
    assert "Retry-After" not in refused
    message = refused.json()["error"]["message"]
    assert message.startswith(
        "storage quota: 0.7 MB of 1.0 MB used by unexpired runs, and this run would add "
        "0.7 MB; space frees up as runs expire, the next at "
    )
    assert runs_of(f"user:{user.pk}") == 1
    assert run_dirs(site) == before


def test_anonymous_callers_are_counted_by_address(site: Service, quotas: Any) -> None:
    quotas(anonymous_quota_runs_per_day=1)
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    client = browser(REMOTE_ADDR=address)
    assert post(client, "/pipelines/trivial/runs", {}).status_code == 201

    refused = post(client, "/pipelines/trivial/runs", {})

    assert refused.status_code == 429
    message = refused.json()["error"]["message"]
    assert message.startswith(
        "quota of runs per day: 1 of 1 runs in the last 24 hours, and this run would "
        "pass it; the next place frees up at "
    )
    assert 86000 < int(refused["Retry-After"]) <= 86400
    assert runs_of(f"address:{address}") == 1
    # Another address has its own quota; a signed-in user has the user's (none set here).
    assert post(browser(REMOTE_ADDR="10.255.0.1"), "/pipelines/trivial/runs", {}).status_code == 201
    signed_in = browser(REMOTE_ADDR=address)
    assert post(signed_in, "/pipelines/trivial/runs", {}, **bearer(make_user())).status_code == 201


def test_the_web_form_shows_the_refusal_and_the_usage_page_the_usage(site: Service) -> None:
    user = make_user()
    own_quota(user, concurrent=1, runs_per_day=50)
    client = browser(user)
    assert client.post("/pipelines/trivial/", {"value": "1"}).status_code == 303

    refused = client.post("/pipelines/trivial/", {"value": "2"})

    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"
    assert b"quota of concurrent runs: 1 of 1 runs are queued or running" in (refused.content)
    assert runs_of(f"user:{user.pk}") == 1
    page = client.get("/account/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Runs queued or running" in text and "(100 %)" in text and "50" in text


def test_an_unlimited_user_passes_every_default_quota(site: Service, quotas: Any) -> None:
    quotas(quota_concurrent=1)
    user = make_user()
    own_quota(user, unlimited=True)
    client, auth = browser(), bearer(user)
    for _ in range(3):
        assert post(client, "/pipelines/trivial/runs", {}, **auth).status_code == 201

"""Sharing a private run, read-only, by link or with named users, through the REST API and the
pages; whatever else a caller may not see or do still answers 404."""

from __future__ import annotations

import json
from typing import Any

from gristmill.app.service import Service
from gristmill.executors.inline import run_inline
from tests.integration.test_access import API, RUN_PATHS, bearer, browser, make_user, not_found


def private_run(service: Service, owner: Any) -> str:
    response = browser(owner).post(
        f"{API}/pipelines/trivial/runs", "{}", content_type="application/json"
    )
    run_id = str(response.json()["id"])
    run_inline(service, run_id)
    return run_id


def make_link(owner: Any, run_id: str) -> str:
    response = browser().post(f"{API}/runs/{run_id}/shares/link", headers=bearer(owner))
    assert response.status_code == 200, response.json()
    link = response.json()["link"]
    assert link["url"].endswith(f"/shared/{link['token']}/")
    return str(link["token"])


ACTIONS = [
    ("post", "/cancel"),
    ("post", "/rerun"),
    ("post", "/retry-batches"),
    ("delete", ""),
    ("put", "/pin"),
    ("get", "/shares"),
    ("post", "/shares/link"),
    ("get", "/notifications"),
]


def refused_everything_else(client: Any, run_id: str) -> None:
    for method, path in ACTIONS:
        answer = getattr(client, method)(f"{API}/runs/{run_id}{path}")
        assert (answer.status_code, answer.json()["error"]["message"]) == not_found(run_id), path


# -- by link --------------------------------------------------------------------------------


def test_a_share_link_lets_its_holder_read_the_run_and_nothing_more(
    service: Service, site: None
) -> None:
    owner = make_user()
    run_id = private_run(service, owner)
    token = make_link(owner, run_id)
    holder = browser()
    assert holder.get(f"/runs/{run_id}/").status_code == 404  # not before opening the link

    opened = holder.get(f"/shared/{token}/")
    assert (opened.status_code, opened["Location"]) == (303, f"/runs/{run_id}/")
    page = holder.get(f"/runs/{run_id}/").content.decode()
    assert 'id="results"' in page
    assert 'id="run-actions"' not in page  # no cancel, rerun, delete or pin buttons
    assert 'id="share"' not in page
    for path in RUN_PATHS:
        assert holder.get(f"{API}/runs/{run_id}{path}").status_code == 200, path
    refused_everything_else(holder, run_id)
    assert holder.post(f"/runs/{run_id}/rerun/").status_code == 404


def test_the_api_answers_a_share_links_run_to_programs(service: Service, site: None) -> None:
    owner = make_user()
    run_id = private_run(service, owner)
    token = make_link(owner, run_id)
    answer = browser().get(f"{API}/shared/{token}")
    assert (answer.status_code, answer.json()["id"], answer.json()["state"]) == (
        200,
        run_id,
        "succeeded",
    )


def test_a_revoked_link_answers_404_even_to_those_who_opened_it(
    service: Service, site: None
) -> None:
    owner = make_user()
    run_id = private_run(service, owner)
    token = make_link(owner, run_id)
    holder = browser()
    holder.get(f"/shared/{token}/")
    assert holder.get(f"{API}/runs/{run_id}").status_code == 200

    revoked = browser().delete(f"{API}/runs/{run_id}/shares/link", headers=bearer(owner))
    assert revoked.status_code == 204
    assert holder.get(f"/shared/{token}/").status_code == 404
    assert browser().get(f"{API}/shared/{token}").status_code == 404
    assert holder.get(f"/runs/{run_id}/").status_code == 404
    for path in RUN_PATHS:
        answer = holder.get(f"{API}/runs/{run_id}{path}")
        assert (answer.status_code, answer.json()["error"]["message"]) == not_found(run_id)


def test_a_new_link_after_a_revoked_one_has_a_new_token(service: Service, site: None) -> None:
    owner = make_user()
    run_id = private_run(service, owner)
    first = make_link(owner, run_id)
    assert make_link(owner, run_id) == first  # asking again gives the same link
    browser().delete(f"{API}/runs/{run_id}/shares/link", headers=bearer(owner))
    second = make_link(owner, run_id)
    assert second != first
    assert browser().get(f"/shared/{first}/").status_code == 404


# -- with named users -----------------------------------------------------------------------


def test_a_run_shared_with_a_user_is_theirs_to_read_only(service: Service, site: None) -> None:
    owner, friend, stranger = make_user(), make_user(), make_user()
    run_id = private_run(service, owner)
    shared = browser().put(
        f"{API}/runs/{run_id}/shares/users/{friend.username}", headers=bearer(owner)
    )
    assert shared.status_code == 200
    assert [u["username"] for u in shared.json()["users"]] == [friend.username]

    listed = browser().get(f"{API}/shared/runs", headers=bearer(friend)).json()
    assert [(r["id"], r["url"]) for r in listed] == [(run_id, f"/runs/{run_id}/")]
    for path in RUN_PATHS:
        assert browser(friend).get(f"{API}/runs/{run_id}{path}").status_code == 200, path
    assert browser(friend).get(f"/runs/{run_id}/").status_code == 200
    page = browser(friend).get("/runs/shared/").content.decode()
    assert f"/runs/{run_id}/" in page
    assert owner.username in page
    refused_everything_else(browser(friend), run_id)

    for path in RUN_PATHS:
        assert browser(stranger).get(f"{API}/runs/{run_id}{path}").status_code == 404
    assert browser().get(f"{API}/shared/runs", headers=bearer(stranger)).json() == []

    removed = browser().delete(
        f"{API}/runs/{run_id}/shares/users/{friend.username}", headers=bearer(owner)
    )
    assert removed.status_code == 204
    assert browser(friend).get(f"{API}/runs/{run_id}").status_code == 404


def test_sharing_with_an_unknown_user_names_the_field(service: Service, site: None) -> None:
    owner = make_user()
    run_id = private_run(service, owner)
    answer = browser().put(f"{API}/runs/{run_id}/shares/users/nobody-here", headers=bearer(owner))
    assert answer.status_code == 400
    assert answer.json()["error"]["details"] == {
        "username": ["there is no user named 'nobody-here'"]
    }


def test_a_run_submitted_without_signing_in_is_not_shared(service: Service, site: None) -> None:
    response = browser().post(
        f"{API}/pipelines/trivial/runs", "{}", content_type="application/json"
    )
    run_id = response.json()["id"]
    answer = browser().post(f"{API}/runs/{run_id}/shares/link")
    assert answer.status_code == 403
    assert answer.json()["error"]["message"] == (
        "a run submitted without signing in is readable by whoever has its address; "
        "send that instead"
    )


def test_staff_may_share_and_see_the_shares_of_any_run(service: Service, site: None) -> None:
    owner, staff = make_user(), make_user(staff=True)
    run_id = private_run(service, owner)
    make_link(staff, run_id)
    shares = browser().get(f"{API}/runs/{run_id}/shares", headers=bearer(owner)).json()
    assert shares["link"] is not None and shares["users"] == []


# -- the share panel's buttons --------------------------------------------------------------


def test_the_share_panel_makes_and_revokes_a_link_and_shares_with_a_user(
    service: Service, site: None
) -> None:
    owner, friend = make_user(), make_user()
    run_id = private_run(service, owner)
    page = browser(owner)
    assert 'id="share"' in page.get(f"/runs/{run_id}/").content.decode()

    made = page.post(f"/runs/{run_id}/share/", {"action": "link"})
    assert (made.status_code, made["Location"]) == (303, f"/runs/{run_id}/#share")
    shown = page.get(f"/runs/{run_id}/").content.decode()
    token = json.loads(browser().get(f"{API}/runs/{run_id}/shares", headers=bearer(owner)).content)[
        "link"
    ]["token"]
    assert f"/shared/{token}/" in shown

    page.post(f"/runs/{run_id}/share/", {"action": "add", "username": friend.username})
    assert browser(friend).get(f"/runs/{run_id}/").status_code == 200
    refused = page.post(
        f"/runs/{run_id}/share/", {"action": "add", "username": "no-one"}, follow=True
    )
    assert "There is no user named &#x27;no-one&#x27;." in refused.content.decode()

    page.post(f"/runs/{run_id}/share/", {"action": "unlink"})
    assert browser().get(f"/shared/{token}/").status_code == 404
    # Someone the run is shared with cannot share it further.
    assert browser(friend).post(f"/runs/{run_id}/share/", {"action": "link"}).status_code == 404

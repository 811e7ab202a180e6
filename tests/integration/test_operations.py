"""The operator's side of the site through Django's test client: the admin (read-mostly, with
the run actions), the operator's page, the run page's timeline and what a run ran."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.utils import timezone

from gristmill.app.service import Service
from gristmill.states import RunState
from gristmill.storage import FilesystemStorage
from gristmill.store.records import Report
from tests.integration.conftest import serving
from tests.integration.test_web import HOST, finished, page

if TYPE_CHECKING:
    from django.test import Client


def user(*, staff: bool, view: bool = False) -> Any:
    """A user; ``view``: a staff member allowed to look at gristmill's records in the admin."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    name = f"{'staff' if staff else 'user'}-{uuid.uuid4().hex[:8]}"
    made = get_user_model().objects.create_user(name, is_staff=staff)
    if view:
        made.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="gristmill",
                codename__in=[
                    "view_run",
                    "view_datafile",
                    "view_apitoken",
                    "view_input",
                    "view_step",
                ],
            )
        )
    return made


def client(signed_in: Any = None) -> Client:
    from django.test import Client

    web = Client(HTTP_HOST=HOST)
    if signed_in is not None:
        web.force_login(signed_in)
    return web


def admin_action(web: Client, action: str, run_id: str) -> Any:
    return web.post(
        "/admin/gristmill/run/",
        {"action": action, "_selected_action": [run_id], "index": 0},
        follow=True,
    )


# -- the admin ------------------------------------------------------------------------------


def test_staff_see_runs_with_their_inputs_and_steps_in_the_admin(
    service: Service, site: Service
) -> None:
    from gristmill.authoring.inputs import TextInput

    run_id = finished(service, "reports", {"title": "T"}, inputs=[TextInput("a\nb", "w.txt")])
    web = client(user(staff=True, view=True))
    listing = web.get("/admin/gristmill/run/")
    assert listing.status_code == 200
    assert run_id in listing.content.decode()
    detail = web.get(f"/admin/gristmill/run/{run_id}/change/")
    assert detail.status_code == 200
    html = detail.content.decode()
    assert hashlib.sha256(b"a\nb").hexdigest() in html  # the input's digest
    assert 'name="_save"' not in html  # read-only: nothing to save
    assert web.post(f"/admin/gristmill/run/{run_id}/change/", {}).status_code == 403
    assert web.get("/admin/gristmill/run/add/").status_code == 403


def test_admin_run_actions_go_through_the_same_checks_as_the_api(
    service: Service, site: Service
) -> None:
    run_id = finished(service, "trivial")
    web = client(user(staff=True, view=True))

    pinned = admin_action(web, "pin", run_id)
    assert "Pinned 1 run" in pinned.content.decode()
    assert service.store.get_run(run_id).pinned

    refused = admin_action(web, "cancel", run_id)
    assert "there is nothing to cancel" in refused.content.decode()
    assert service.store.get_run(run_id).state == RunState.SUCCEEDED

    admin_action(web, "unpin", run_id)
    deleted = admin_action(web, "delete", run_id)
    assert "Deleted 1 run" in deleted.content.decode()
    assert service.store.get_run(run_id).state == RunState.EXPIRED

    again = admin_action(web, "rerun", run_id)
    assert "the run has expired" in again.content.decode()


def test_the_admin_is_not_for_users_who_are_not_staff(service: Service, site: Service) -> None:
    response = client(user(staff=False)).get("/admin/gristmill/run/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_staff_delete_a_data_file_with_its_bytes_in_the_admin(
    service: Service, tmp_path: Path
) -> None:
    from django.contrib.auth.models import Permission
    from django.core.files.uploadedfile import SimpleUploadedFile

    from gristmill.server import datafiles
    from gristmill.server.access import Caller
    from gristmill.server.models import DataFile

    with serving(replace(service, storage=FilesystemStorage(tmp_path / "data"))) as own:
        member = user(staff=False)
        upload = SimpleUploadedFile("kept.txt", b"kept\n", content_type="text/plain")
        kept = datafiles.create_from_upload(
            Caller(member.pk, member.get_username()), upload, service=own
        )
        path = datafiles.stored_path(kept, own)
        assert path.exists()
        staff = user(staff=True, view=True)
        staff.user_permissions.add(Permission.objects.get(codename="delete_datafile"))
        web = client(staff)
        answer = web.post(
            "/admin/gristmill/datafile/",
            {"action": "delete_selected", "_selected_action": [str(kept.pk)], "post": "yes"},
            follow=True,
        )
        assert answer.status_code == 200
        assert not DataFile.objects.filter(pk=kept.pk).exists()
        assert not path.exists()


# -- the operator's page --------------------------------------------------------------------


def test_the_operators_page_draws_its_charts_for_staff(service: Service, site: Service) -> None:
    finished(service, "trivial")
    finished(service, "failing")
    response = client(user(staff=True)).get("/operator/")
    assert response.status_code == 200
    html = page(response)
    for chart in ("#runs-chart", "#durations-chart"):
        (svg,) = html.select(f"{chart} svg.plot")
        assert svg.attrs["role"] == "img"
    drawn: dict[str, int] = {}
    for bar in html.select("#runs-chart rect.bar"):  # titles like "01:00-01:59 UTC: 2 failed"
        count, state = bar.text.rsplit(": ", 1)[1].split()
        drawn[state] = drawn.get(state, 0) + int(count)
    from django.db.models import Count

    from gristmill.server.models import Run

    since = timezone.now() - timedelta(hours=23)  # all within the chart's 24 hours
    stored = dict(
        Run.objects.filter(created_at__gte=since).values_list("state").annotate(Count("id"))
    )
    assert drawn == stored
    assert drawn["succeeded"] >= 1 and drawn["failed"] >= 1
    assert html.select("#durations-chart rect.bar")


def test_the_operators_page_shows_queues_waiting_and_runs_being_worked(
    service: Service, site: Service
) -> None:
    from gristmill.app.submission import submit

    unclaimed = submit("trivial", service=service)
    working = submit("trivial", service=service)
    (claim,) = service.store.claim("host/123", queues=None, lease=30, run_id=working)
    try:
        html = page(client(user(staff=True)).get("/operator/"))
    finally:
        service.store.finish(claim, RunState.CANCELLED, Report())
    from gristmill.server.models import WorkUnit

    cells = html.texts("#queue-table td")  # queue, waiting, oldest: three per row
    rows = dict(zip(cells[0::3], cells[1::3], strict=True))
    waiting = WorkUnit.objects.filter(state="queued", queue="default").count()
    assert waiting >= 1  # the run not claimed (and any other test left queued)
    assert rows["default"] == str(waiting)
    assert html.select("#queue-chart rect.bar")
    # Other tests on the session's database may have left runs claimed: find ours.
    (row,) = [row for row in html.select("#working tbody tr") if working[:8] in row.text]
    assert "host/123" in row.text
    hrefs = " ".join(node.attrs.get("href", "") for node in html.select("#working a"))
    assert working in hrefs and unclaimed not in hrefs


@pytest.mark.parametrize("staff", [False, None], ids=["signed-in", "anonymous"])
def test_the_operators_page_and_metrics_are_not_found_for_others(
    site: Service, staff: bool | None
) -> None:
    web = client(user(staff=False) if staff is not None else None)
    assert web.get("/operator/").status_code == 404
    assert web.get("/metrics").status_code == 404


def test_staff_read_the_metrics_with_their_session(site: Service) -> None:
    response = client(user(staff=True)).get("/metrics")
    assert response.status_code == 200
    assert "gristmill_runs{state=" in response.content.decode()


# -- the run page ---------------------------------------------------------------------------


def test_a_run_page_shows_its_timeline_and_what_it_ran(service: Service, site: Service) -> None:
    from gristmill.authoring.inputs import TextInput

    run_id = finished(service, "reports", {"title": "T"}, inputs=[TextInput("a\nb", "w.txt")])
    status = service.store.get_run(run_id)
    html = page(client().get(f"/runs/{run_id}/"))
    stored = sorted(service.store.get_steps(run_id).values(), key=lambda s: s.position)
    steps = html.select("#timeline g.timeline-step")
    assert [(g.attrs["data-step"], g.attrs["data-state"]) for g in steps] == [
        (s.name, s.state) for s in stored if s.started_at is not None
    ]
    assert steps and all(len(g.select("rect")) == 1 for g in steps)
    from gristmill.app.submission import get_run

    version = get_run(run_id, service=service).version
    assert version is not None
    assert html.one("#pipeline-version code").text == version[:16]
    assert '"title": "T"' in html.one("#run-params").text
    assert html.texts("#reproduce .input-digest") == [f"3 bytes, SHA-256 {DIGEST}"]
    assert status.params["title"] == "T"


DIGEST = hashlib.sha256(b"a\nb").hexdigest()

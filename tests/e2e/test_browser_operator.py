"""The operator's page and a run's timeline in a real browser against a live server."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Server
from tests.e2e.test_browser import browser, page
from tests.e2e.test_browser_accounts import make_member, make_user, sign_in
from tests.integration.conftest import wait_until

__all__ = ["browser", "page"]  # the fixtures, shared with the other browser tests


def finished_run(server: Server) -> str:
    with server.client() as client:
        response = client.post("/api/v1/pipelines/trivial/runs", json={})
        assert response.status_code == 201, response.text
        run_id: str = response.json()["id"]
        wait_until(
            lambda: client.get(f"/api/v1/runs/{run_id}").json()["state"] == "succeeded",
            message=f"run {run_id} did not succeed",
        )
    return run_id


def page_problems(page: Any) -> list[str]:
    """What goes wrong on the page from now on: console errors (a style or script the policy
    blocks among them) and resources not found, except the browser's own ``/favicon.ico``."""
    seen: list[str] = []

    def response(answer: Any) -> None:
        if answer.status >= 400 and not answer.url.endswith("/favicon.ico"):
            seen.append(f"{answer.status} {answer.url}")

    def console(message: Any) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            seen.append(message.text)  # a failed load is reported above, with its URL

    page.on("response", response)
    page.on("console", console)
    return seen


def test_staff_see_the_operators_page_with_its_charts(server: Server, page: Any) -> None:
    run_id = finished_run(server)
    problems = page_problems(page)
    sign_in(page, server, make_user(server))
    page.click("nav.account >> text=Operator")
    page.wait_for_url("**/operator/")
    assert page.text_content("h1").strip() == "Operator"
    for chart in ("#runs-chart", "#durations-chart"):
        svg = page.locator(f"{chart} svg.plot")
        assert svg.is_visible()
        box = svg.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50
        assert page.locator(f"{chart} rect.bar").count() >= 1
    title = page.locator("#runs-chart rect.bar title").first.text_content()
    assert " UTC: " in title
    assert "alive" in page.text_content("#supervisors tbody")
    assert problems == []

    page.goto(f"{server.url}runs/{run_id}/")
    bar = page.locator("#timeline g.timeline-step[data-step='one'] rect")
    assert bar.is_visible()
    assert bar.bounding_box()["width"] >= 2
    assert page.locator("#pipeline-version code").text_content().strip() != ""
    assert problems == []


def test_the_operators_page_is_not_found_for_anybody_else(server: Server, page: Any) -> None:
    response = page.goto(f"{server.url}operator/")
    assert response.status == 404
    assert page.text_content("h1").strip() == "Not found"

    sign_in(page, server, make_member(server))
    assert page.locator("nav.account >> text=Operator").count() == 0
    response = page.goto(f"{server.url}operator/")
    assert response.status == 404
    assert page.text_content("h1").strip() == "Not found"
    response = page.goto(f"{server.url}metrics")
    assert response.status == 404

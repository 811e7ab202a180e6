"""Signing in, and a signed-in user's runs, in a real browser against a live server."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import Server
from tests.e2e.test_browser import browser, page

__all__ = ["browser", "page"]  # the fixtures, shared with the other browser tests

PASSWORD = "a long pass phrase"


def make_user(server: Server) -> str:
    name = f"user{uuid.uuid4().hex[:8]}"
    email = f"{name}@example.com"
    made = server.command(
        "manage",
        "createsuperuser",
        "--noinput",
        "--username",
        name,
        "--email",
        email,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
    )
    assert made.returncode == 0, made.stderr
    return name


def test_a_pipeline_for_members_sends_a_visitor_to_sign_in_and_back(
    server: Server, page: Any
) -> None:
    name = make_user(server)
    page.goto(f"{server.url}pipelines/members-only/")
    page.wait_for_url("**/sign-in/?next=/pipelines/members-only/")
    page.fill("#id_username", name)
    page.fill("#id_password", PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_url("**/pipelines/members-only/")
    page.click("#submit-button")
    page.wait_for_selector("#results")
    run_url = page.url

    page.click("nav.account >> text=Runs")
    page.wait_for_url("**/runs/")
    assert page.get_attribute("#runs tbody a", "href") == run_url.removeprefix(server.url[:-1])
    assert page.text_content("#runs tbody td:nth-child(5)").strip() == name

    page.click("#sign-out")
    page.wait_for_selector("#sign-in")
    page.goto(run_url)
    assert page.text_content("h1").strip() == "Not found"

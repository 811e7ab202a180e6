"""Signing in, and a signed-in user's runs, in a real browser against a live server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Server
from tests.e2e.test_browser import browser, page

__all__ = ["browser", "page"]  # the fixtures, shared with the other browser tests

PASSWORD = "a long pass phrase"


def fill_sign_in(page: Any, name: str) -> None:
    """Fill in and send the sign-in form on the page shown, as user ``name``."""
    page.fill("#id_username", name)
    page.fill("#id_password", PASSWORD)
    page.click("#sign-in-form button[type=submit]")


def sign_in(page: Any, server: Server, name: str) -> None:
    """Sign in as ``name`` from the sign-in page, and wait until signed in."""
    page.goto(f"{server.url}sign-in/")
    fill_sign_in(page, name)
    page.wait_for_selector("#sign-out")


def make_member(server: Server) -> str:
    """A user who is not staff (staff see every run anyway)."""
    name = f"member{uuid.uuid4().hex[:8]}"
    script = (
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user({name!r}, password={PASSWORD!r})"
    )
    made = server.command("manage", "shell", "-c", script)
    assert made.returncode == 0, made.stderr
    return name


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
    fill_sign_in(page, name)
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


def test_a_data_file_kept_on_the_server_is_chosen_as_a_runs_input(
    server: Server, page: Any, tmp_path: Path
) -> None:
    name = make_user(server)
    sign_in(page, server, name)
    page.click("nav.account >> text=Data files")
    page.wait_for_url("**/datafiles/")
    kept = tmp_path / "lines.txt"
    kept.write_text("kept on the server\n")
    page.set_input_files("#id_file", str(kept))
    page.click("#upload-button")
    page.wait_for_selector("#datafiles tr.datafile")
    assert "lines.txt" in page.text_content("#datafiles")

    page.goto(f"{server.url}pipelines/any-source/")
    (choice,) = page.locator("#id_datafile option").all_text_contents()
    assert choice.startswith("lines.txt (19\xa0bytes, ")
    page.select_option("#id_datafile", label=choice)
    page.click("#submit-button")
    page.wait_for_selector("#results")
    assert page.text_content("#run-state").strip() == "succeeded"
    assert "kept on the server" in page.text_content("#results")

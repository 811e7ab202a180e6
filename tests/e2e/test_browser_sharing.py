"""The run page's share panel, in a real browser against a live server: a link made, opened
in another browser, revoked; a run shared with a named user, found in their list."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Server
from tests.e2e.test_browser import browser, page
from tests.e2e.test_browser_accounts import make_member, make_user, sign_in

__all__ = ["browser", "page"]  # the fixtures, shared with the other browser tests


def submitted_run(page: Any, server: Server) -> str:
    page.goto(f"{server.url}pipelines/members-only/")
    page.click("#submit-button")
    page.wait_for_selector("#results")
    return str(page.url)


def test_a_share_link_shows_the_run_elsewhere_until_it_is_revoked(
    server: Server, page: Any, browser: Any
) -> None:
    sign_in(page, server, make_user(server))
    run_url = submitted_run(page, server)
    page.click("#share-link-make")
    page.wait_for_selector("#share-link")
    link = page.input_value("#share-link")
    assert link.startswith(server.url) and "/shared/" in link
    assert page.text_content("#messages").strip().startswith("Shared by link")

    elsewhere = browser.new_context()
    other = elsewhere.new_page()
    other.set_default_timeout(20_000)
    try:
        other.goto(link)
        other.wait_for_selector("#results")
        assert other.url == run_url
        assert other.locator("#run-actions").count() == 0
        assert other.locator("#share").count() == 0

        page.click("#share-unlink")
        page.wait_for_selector("#share-link-make")
        other.goto(link)
        assert other.text_content("h1").strip() == "Not found"
        other.goto(run_url)
        assert other.text_content("h1").strip() == "Not found"
    finally:
        elsewhere.close()


def test_a_run_shared_with_a_user_is_in_their_list(server: Server, page: Any, browser: Any) -> None:
    member = make_member(server)
    sign_in(page, server, make_user(server))
    run_url = submitted_run(page, server)
    page.fill("#share-username", member)
    page.click("#share-user-add")
    page.wait_for_selector("#share-users")
    assert page.text_content("#share-users .share-user").strip() == member

    theirs = browser.new_context()
    other = theirs.new_page()
    other.set_default_timeout(20_000)
    try:
        sign_in(other, server, member)
        other.click("nav.account >> text=Shared with me")
        other.wait_for_url("**/runs/shared/")
        other.click("#shared-runs tbody a")
        other.wait_for_selector("#results")
        assert other.url == run_url
        assert other.locator("#run-actions").count() == 0
    finally:
        theirs.close()

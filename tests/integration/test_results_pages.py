"""A pipeline's page template, found in the ``templates`` folder beside its module, through the
real run page: the documented context, staff-only keys for staff alone, no raw results; a page
template that fails leaves the default results with a note."""

from __future__ import annotations

from django.test import Client

from gristmill.app.service import Service
from gristmill.app.submission import submit
from gristmill.executors.inline import run_inline
from tests.integration.test_access import browser, make_user
from tests.integration.test_web import finished, page, run_page


def test_a_page_template_gets_contexts_and_the_viewers_staff_flag(
    service: Service, web: Client
) -> None:
    run_id = finished(service, "paged", {"value": 7})
    html = run_page(web, run_id)
    assert html.texts("#results-heading") == ["Paged results"]
    (paged,) = html.select("#paged")
    assert paged.attrs["data-staff"] == "no"
    assert paged.text == "for everyone / hidden / no raw result / 7"
    # The default rendering of each step is still there, below.
    assert html.texts("#result-paged_step td") == ["for everyone"]
    staff = page(browser(make_user(staff=True)).get(f"/runs/{run_id}/"))
    (paged,) = staff.select("#paged")
    assert paged.attrs["data-staff"] == "yes"
    assert paged.text == "for everyone / for staff / no raw result / 7"
    assert html.texts("#ancestor") == ["first run"]


def test_a_page_template_links_the_run_it_was_run_again_from(service: Service, web: Client) -> None:
    first = finished(service, "paged")
    again = submit("paged", ancestor=first, service=service)
    run_inline(service, again)
    (link,) = run_page(web, again).select("#ancestor a")
    assert (link.attrs["href"], link.text) == (f"/runs/{first}/", first)


def test_a_page_template_that_fails_leaves_the_default_results_with_a_note(
    service: Service, web: Client
) -> None:
    run_id = finished(service, "broken-page")
    html = run_page(web, run_id)
    (note,) = html.texts("#page-error")
    assert note.startswith("This pipeline's results page could not be shown (internal error")
    assert html.texts("#results-heading") == ["Results"]
    assert html.texts("#result-paged_step td") == ["for everyone"]

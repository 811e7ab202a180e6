"""Errors Django meets before any gristmill view runs answer with the site's own pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.integration.test_web import HOST, page

if TYPE_CHECKING:
    from django.test import Client


def client(**kw: object) -> Client:
    from django.test import Client

    return Client(HTTP_HOST=HOST, **kw)


def test_an_unknown_path_is_a_404_page_of_the_site(site: None) -> None:
    response = client().get("/no/such/page")
    assert response.status_code == 404
    html = page(response)
    assert html.texts("h1") == ["Not found"]
    assert html.texts("#error-message") == ["There is no page at /no/such/page."]


def test_pasted_text_over_the_in_memory_limit_is_a_413_page(site: None) -> None:
    from django.conf import settings

    too_much = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client().post("/pipelines/trivial/", {"text": too_much})
    assert response.status_code == 413
    assert page(response).texts("#error-message") == [
        "The form is larger than this server accepts for pasted text (2.5 MB); "
        "upload the text as a file instead."
    ]


def test_a_form_without_its_csrf_token_is_a_403_page(site: None) -> None:
    response = client(enforce_csrf_checks=True).post("/pipelines/trivial/", {})
    assert response.status_code == 403
    assert page(response).texts("#error-message") == [
        "The form has expired or came from another site; reload the page and try again."
    ]

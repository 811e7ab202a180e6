"""JSON documents on each database: JSON data files kept, parsed, in the database, read back and
searched by a JSON path over the API (``/api/v1/documents``, ``/api/v1/datafiles/{id}/document``).

A caller sees the documents of the data files they see; anything else answers exactly like a
data file that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from gristmill.app.service import Service
from gristmill.errors import NotFoundError
from tests.integration.conftest import serving
from tests.integration.test_access import bearer, browser, error_of, make_user
from tests.integration.test_datafiles import API, UNKNOWN, api_upload, not_found, site
from tests.integration.test_input_kinds import inputs_seen, submit_json
from tests.integration.test_web import page

__all__ = ["site"]  # the fixture, used here too

SEARCH = "/api/v1/documents"


@pytest.fixture
def small_documents(site: Service) -> Iterator[Service]:
    """The site on a service that keeps JSON documents of at most 16 bytes."""
    settings = replace(site.settings, json_document_max_size=16)
    with serving(replace(site, settings=settings)) as limited:
        yield limited


def upload_json(owner: Any, name: str, value: Any) -> str:
    """Upload ``value`` as the JSON data file ``name`` of ``owner``; its id."""
    response = api_upload(browser(), name, json.dumps(value).encode(), **bearer(owner))
    assert response.status_code == 201, response.json()
    return str(response.json()["id"])


def document(owner: Any, file_id: str) -> Any:
    return browser().get(f"{API}/{file_id}/document", headers=bearer(owner))


def found(owner: Any, path: str, value: str | None = None, **more: Any) -> list[str]:
    """The names of the data files a search by ``owner`` finds, in order."""
    params = {"path": path, **({} if value is None else {"value": value}), **more}
    response = browser().get(SEARCH, params, headers=bearer(owner))
    assert response.status_code == 200, response.json()
    return [result["name"] for result in response.json()["results"]]


def document_rows() -> int:
    from gristmill.server.models import JsonDocument

    return JsonDocument.objects.count()


# -- keeping and reading back ------------------------------------------------------------


def test_a_json_upload_is_kept_as_a_document_and_read_back(site: Service) -> None:
    owner = make_user()
    value = {"meta": {"source": "census", "année": 2021}, "rows": [1, 2.5, None, True]}
    file_id = upload_json(owner, "census.json", value)
    response = document(owner, file_id)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == value


def test_a_file_that_is_not_json_has_no_document_and_says_why(site: Service) -> None:
    owner = make_user()
    file_id = api_upload(browser(), "notes.txt", b"grist for the mill", **bearer(owner)).json()[
        "id"
    ]
    assert error_of(document(owner, file_id)) == (
        404,
        "the data file 'notes.txt' is not kept as a JSON document: it is plain text, "
        "not a JSON document",
    )


def test_broken_json_is_kept_as_a_data_file_without_a_document(site: Service) -> None:
    owner = make_user()
    response = api_upload(browser(), "broken.json", b'{"a": [1, 2}', **bearer(owner))
    assert response.status_code == 201
    status, message = error_of(document(owner, response.json()["id"]))
    assert status == 404
    assert message.startswith(
        "the data file 'broken.json' is not kept as a JSON document: is not valid JSON: "
    )
    assert "line 1 column 12" in message


def test_json_over_the_document_limit_is_kept_on_request_once_the_limit_allows(
    small_documents: Service,
) -> None:
    owner = make_user()
    file_id = upload_json(owner, "big.json", {"words": "more than sixteen bytes"})
    assert error_of(document(owner, file_id)) == (
        404,
        "the data file 'big.json' is not kept as a JSON document: it is larger than the limit "
        "of 16\xa0bytes for JSON documents",
    )
    keep = browser().post(f"{API}/{file_id}/document", headers=bearer(owner))
    assert error_of(keep) == (
        413,
        "big.json cannot be kept as a JSON document: it is larger than the limit of 16\xa0bytes "
        "for JSON documents",
    )
    raised = replace(small_documents.settings, json_document_max_size=1024)
    with serving(replace(small_documents, settings=raised)):
        keep = browser().post(f"{API}/{file_id}/document", headers=bearer(owner))
    assert keep.status_code == 201, keep.json()
    assert keep.json()["document_url"] == f"{API}/{file_id}/document"
    assert document(owner, file_id).json() == {"words": "more than sixteen bytes"}


def test_a_nul_character_is_refused_alike_on_every_database(site: Service) -> None:
    owner = make_user()
    file_id = upload_json(owner, "nul.json", {"a": "x\u0000y"})
    assert error_of(document(owner, file_id)) == (
        404,
        "the data file 'nul.json' is not kept as a JSON document: it holds the character "
        "\\u0000, which a JSON document in the database cannot",
    )


def test_another_users_document_answers_like_a_file_that_does_not_exist(site: Service) -> None:
    file_id = upload_json(make_user(), "theirs.json", {"secret": 1})
    assert error_of(document(make_user(), file_id)) == not_found(file_id)
    assert error_of(document(make_user(), UNKNOWN)) == not_found(UNKNOWN)
    keep = browser().post(f"{API}/{file_id}/document", headers=bearer(make_user()))
    assert error_of(keep) == not_found(file_id)


def test_anonymous_callers_are_asked_to_sign_in(site: Service) -> None:
    assert browser().get(SEARCH, {"path": "a"}).status_code == 401
    assert browser().get(SEARCH, {"path": "a..b"}).status_code == 401
    assert browser().get(f"{API}/{UNKNOWN}/document").status_code == 401


def test_the_document_goes_with_its_data_file(site: Service) -> None:
    owner = make_user()
    file_id = upload_json(owner, "gone.json", {"a": 1})
    before = document_rows()
    assert browser().delete(f"{API}/{file_id}", headers=bearer(owner)).status_code == 204
    assert document_rows() == before - 1
    assert error_of(document(owner, file_id)) == not_found(file_id)


def test_a_large_json_array_is_kept_read_back_and_searched(site: Service) -> None:
    owner = make_user()
    items = [
        {"id": n, "meta": {"source": f"s{n % 7}"}, "tags": ["a", str(n)]} for n in range(20_000)
    ]
    file_id = upload_json(owner, "large.json", items)
    assert document(owner, file_id).json() == items
    assert found(owner, "12345.id", "12345") == ["large.json"]
    assert found(owner, "12345.id", "12346") == []
    assert found(owner, "19999.meta.source", "s0") == ["large.json"]


def test_a_document_is_handed_to_a_pipeline_like_any_data_file(site: Service) -> None:
    owner = make_user()
    file_id = upload_json(owner, "input.json", {"meta": {"source": "census"}})
    assert found(owner, "meta.source", "census") == ["input.json"]
    response = submit_json(browser(owner), [{"kind": "datafile", "id": file_id}])
    assert response.status_code == 201, response.json()
    seen = inputs_seen(site, response.json()["id"])
    assert seen == [("input.json", "datafile", '{"meta": {"source": "census"}}')]


def test_a_document_whose_bytes_are_gone_says_so(site: Service) -> None:
    from gristmill.server import documents
    from gristmill.server.access import Caller

    owner = make_user()
    file_id = api_upload(browser(), "notes.txt", b"words", **bearer(owner)).json()["id"]
    from gristmill.server.models import DataFile

    site.storage.delete_datafile(DataFile.objects.get(pk=file_id).path)
    with pytest.raises(NotFoundError, match="is not stored any more"):
        documents.get(Caller(owner.pk, owner.username), file_id, service=site)


# -- searching ---------------------------------------------------------------------------


def test_a_search_finds_the_callers_documents_with_the_value_at_the_path(site: Service) -> None:
    owner, other = make_user(), make_user()
    upload_json(owner, "census.json", {"meta": {"source": "census"}})
    upload_json(owner, "survey.json", {"meta": {"source": "survey"}})
    upload_json(owner, "flat.json", {"source": "census"})
    upload_json(other, "theirs.json", {"meta": {"source": "census"}})
    assert found(owner, "meta.source", "census") == ["census.json"]
    assert found(other, "meta.source", "census") == ["theirs.json"]


def test_staff_search_everyones_documents(site: Service) -> None:
    upload_json(make_user(), "one.json", {"k": "v"})
    upload_json(make_user(), "two.json", {"k": "v"})
    assert set(found(make_user(staff=True), "k", "v")) >= {"one.json", "two.json"}


def test_a_value_is_read_as_json_when_it_is_json_else_as_a_string(site: Service) -> None:
    owner = make_user()
    upload_json(owner, "number.json", {"n": 3})
    upload_json(owner, "text.json", {"n": "3"})
    upload_json(owner, "true.json", {"n": True})
    upload_json(owner, "null.json", {"n": None})
    upload_json(owner, "word.json", {"n": "census"})
    upload_json(owner, "one.json", {"n": 1})
    upload_json(owner, "float.json", {"n": 2.5})
    assert found(owner, "n", "3") == ["number.json"]
    assert found(owner, "n", '"3"') == ["text.json"]
    assert found(owner, "n", "true") == ["true.json"]
    assert found(owner, "n", "null") == ["null.json"]
    assert found(owner, "n", "census") == ["word.json"]
    assert found(owner, "n", "1") == ["one.json"]
    assert found(owner, "n", "2.5") == ["float.json"]
    upload_json(owner, "nan.json", {"n": "NaN"})
    assert found(owner, "n", "NaN") == ["nan.json"]  # not JSON: text
    assert found(owner, "n", "1e400") == []  # too large for a number: text


def test_a_part_of_digits_is_a_position_in_an_array(site: Service) -> None:
    owner = make_user()
    upload_json(owner, "first.json", {"parties": [{"name": "A"}, {"name": "B"}]})
    upload_json(owner, "second.json", {"parties": [{"name": "B"}, {"name": "A"}]})
    upload_json(owner, "top.json", ["A", "B"])
    assert found(owner, "parties.0.name", "A") == ["first.json"]
    assert found(owner, "parties.1.name", "A") == ["second.json"]
    assert found(owner, "1", "B") == ["top.json"]


def test_without_a_value_a_search_finds_the_documents_that_have_the_path(site: Service) -> None:
    owner = make_user()
    upload_json(owner, "has.json", {"meta": {"source": None}})
    upload_json(owner, "lacks.json", {"meta": {"origin": "x"}})
    assert found(owner, "meta.source") == ["has.json"]


def test_keys_with_odd_characters_are_searched_literally(site: Service) -> None:
    owner = make_user()
    upload_json(owner, "odd.json", {"a__b": {"it's here, née": "y"}})
    upload_json(owner, "plain.json", {"a": {"b": {"it's here, née": "y"}}})
    assert found(owner, "a__b.it's here, née", "y") == ["odd.json"]


def test_results_come_a_page_at_a_time_newest_first(site: Service) -> None:
    owner = make_user()
    for number in range(5):
        upload_json(owner, f"doc{number}.json", {"kind": "paged"})
    response = browser().get(
        SEARCH, {"path": "kind", "value": "paged", "per_page": 2, "page": 3}, headers=bearer(owner)
    )
    body = response.json()
    assert (body["count"], body["page"], body["pages"]) == (5, 3, 3)
    assert [result["name"] for result in body["results"]] == ["doc0.json"]
    assert found(owner, "kind", "paged", per_page=2) == ["doc4.json", "doc3.json"]
    assert body["results"][0]["document_url"].endswith("/document")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "path: give a JSON path: keys separated by dots, such as meta.source"),
        (
            "a..b",
            "path: 'a..b' has an empty part: separate keys with single dots, such as meta.source",
        ),
        (".a", "path: '.a' has an empty part: separate keys with single dots, such as meta.source"),
        ("a.", "path: 'a.' has an empty part: separate keys with single dots, such as meta.source"),
        ("a\tb", "path: 'a\\tb' holds a control character; keys are printable text"),
        ('a."b"', "path: 'a.\"b\"': keys with a double quote or a backslash cannot be searched"),
        ("a\\b", "path: 'a\\\\b': keys with a double quote or a backslash cannot be searched"),
        ("x" * 501, "path: a JSON path has at most 500 characters"),
        (".".join("k" * 33), "path: a JSON path has at most 32 parts"),
    ],
)
def test_a_path_that_cannot_be_read_answers_400(site: Service, path: str, message: str) -> None:
    response = browser().get(SEARCH, {"path": path, "value": "x"}, headers=bearer(make_user()))
    assert error_of(response) == (400, message)


@pytest.mark.parametrize("value", ['{"a": 1}', "[1, 2]"])
def test_an_object_or_array_as_the_value_answers_400(site: Service, value: str) -> None:
    response = browser().get(SEARCH, {"path": "a", "value": value}, headers=bearer(make_user()))
    assert error_of(response) == (
        400,
        "value: search for one value (text, a number, true, false or null), not an object or "
        "an array: give the path of a value inside it, such as tags.0",
    )


@pytest.mark.parametrize("value", ["a\x00b", '"a\\u0000b"'])
def test_a_nul_character_in_the_value_answers_400(site: Service, value: str) -> None:
    response = browser().get(SEARCH, {"path": "a", "value": value}, headers=bearer(make_user()))
    assert error_of(response) == (
        400,
        "value: no document holds the character \\u0000: leave it out",
    )


def test_postgres_narrows_a_search_with_the_gin_index(site: Service) -> None:
    from django.db import connections

    from gristmill.server import documents
    from gristmill.server.access import Caller

    if connections[site.store.alias].vendor != "postgresql":
        pytest.skip("the GIN index is PostgreSQL's")
    owner = make_user()
    upload_json(owner, "indexed.json", {"meta": {"source": "census"}})
    staff = Caller(owner.pk, owner.username, is_staff=True)  # no owner filter to start from
    files = documents.search(staff, "meta.source", "census")
    with connections[site.store.alias].cursor() as cursor:
        # A test's tiny table is cheaper to scan whole: ask whether the index can serve.
        cursor.execute("ANALYZE gristmill_jsondocument")
        cursor.execute("SET enable_seqscan = off; SET enable_indexscan = off")
        try:
            plan = files.explain()
        finally:
            cursor.execute("RESET enable_seqscan; RESET enable_indexscan")
    assert "gristmill_jsondocument_data" in plan, plan
    assert "indexed.json" in [datafile.name for datafile in files]


# -- the pages ---------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in_from_the_documents_page(site: Service) -> None:
    response = browser().get("/documents/")
    assert (response.status_code, response["Location"]) == (302, "/sign-in/?next=/documents/")


def test_the_documents_page_finds_the_users_documents(site: Service) -> None:
    owner, other = make_user(), make_user()
    file_id = upload_json(owner, "census.json", {"meta": {"source": "census"}})
    upload_json(owner, "survey.json", {"meta": {"source": "survey"}})
    upload_json(other, "theirs.json", {"meta": {"source": "census"}})
    html = page(browser(owner).get("/documents/"))
    assert html.select("tr.document") == []
    assert html.select("#field-path") != []
    response = browser(owner).get("/documents/", {"path": "meta.source", "value": "census"})
    assert response.status_code == 200
    (row,) = page(response).select("tr.document")
    link = row.one("a.document-link")
    assert (link.text, link.attrs["href"]) == ("census.json", f"{API}/{file_id}/document")


def test_the_documents_page_says_when_nothing_is_found(site: Service) -> None:
    owner = make_user()
    upload_json(owner, "census.json", {"meta": {"source": "census"}})
    html = page(browser(owner).get("/documents/", {"path": "meta.source", "value": "nothing"}))
    assert html.texts("#no-documents") == ["No document has that value at that path."]


def test_a_path_that_cannot_be_read_is_shown_at_the_path_field(site: Service) -> None:
    response = browser(make_user()).get("/documents/", {"path": "a..b", "value": "x"})
    assert response.status_code == 400
    assert page(response).texts("#field-path .field-error") == [
        "'a..b' has an empty part: separate keys with single dots, such as meta.source"
    ]


def test_a_data_file_is_converted_with_its_button(site: Service) -> None:
    from gristmill.server.models import DataFile

    owner = make_user()
    client = browser(owner, enforce_csrf_checks=True)
    file_id = upload_json(owner, "items.json", [{"a": 1}, {"a": 2}])
    html = page(client.get("/datafiles/"))
    form = html.one(f"#convert-{file_id}")
    token = form.one("input").attrs["value"]
    assert html.one(f"#to-{file_id}").attrs["form"] == f"convert-{file_id}"
    assert client.post(form.attrs["action"], {"to": "csv"}).status_code == 403  # no CSRF token
    response = client.post(form.attrs["action"], {"csrfmiddlewaretoken": token, "to": "csv"})
    assert (response.status_code, response["Location"]) == (303, "/datafiles/")
    converted = DataFile.objects.get(owner_id=owner.pk, name="items.csv")
    assert site.storage.path(converted.path).read_text() == "a\n1\n2\n"


def test_a_conversion_refused_on_the_page_says_why(site: Service) -> None:
    owner = make_user()
    file_id = upload_json(owner, "items.json", [{"a": 1}])
    response = browser(owner).post(f"/datafiles/{file_id}/convert/", {"to": "json"})
    assert response.status_code == 400
    assert page(response).texts("#error-message") == ["Items.json is already JSON."]
    hidden = browser(make_user()).post(f"/datafiles/{file_id}/convert/", {"to": "csv"})
    assert hidden.status_code == 404

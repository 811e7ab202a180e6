"""Data files on each database: files a signed-in user keeps on the server, over the API
(``/api/v1/datafiles``) and on the data files page.

Only signed-in users keep data files; each sees their own, staff see everyone's; anything else
answers exactly like a data file that does not exist.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service
from gristmill.errors import TooLargeError
from gristmill.storage import FilesystemStorage
from tests.integration.conftest import serving
from tests.integration.test_access import bearer, browser, error_of, make_user
from tests.integration.test_web import page

if TYPE_CHECKING:
    from django.test import Client

API = "/api/v1/datafiles"
UNKNOWN = "00000000-0000-4000-8000-000000000000"
SIGN_IN = "sign in to keep data files; send an API token (Authorization: Bearer ...)"


@pytest.fixture
def site(service: Service, tmp_path: Path) -> Iterator[Service]:
    """The whole site (pages and API) on the test's service, with files of its own (user ids,
    and so data file folders, repeat across the two databases)."""
    with serving(replace(service, storage=FilesystemStorage(tmp_path / "data"))) as own:
        yield own


@pytest.fixture
def small(site: Service) -> Iterator[Service]:
    """The site on a service that keeps data files of at most 8 bytes."""
    with serving(replace(site, settings=replace(site.settings, datafile_max_size=8))) as limited:
        yield limited


def uploaded(name: str, data: bytes, media_type: str = "text/plain") -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=media_type)


def api_upload(client: Client, name: str, data: bytes, **headers: str) -> Any:
    return client.post(API, {"file": uploaded(name, data)}, headers=headers)


def not_found(file_id: str) -> tuple[int, str]:
    return 404, f"no data file with id {file_id!r}"


def stored_files(service: Service, owner: Any) -> list[str]:
    """The names of the files (finished or not) in the owner's data file directory."""
    directory = service.storage.root / "datafiles" / str(owner.pk)
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def rows_of(owner: Any) -> list[Any]:
    from gristmill.server.models import DataFile

    return list(DataFile.objects.filter(owner_id=owner.pk))


# -- the API -----------------------------------------------------------------------------


def test_an_upload_is_kept_and_described(site: Service) -> None:
    owner = make_user()
    response = api_upload(browser(), "notes.txt", b"grist for the mill", **bearer(owner))
    assert response.status_code == 201
    body = response.json()
    file_id = body["id"]
    created_at = body.pop("created_at")
    assert body == {
        "id": file_id,
        "name": "notes.txt",
        "size": 18,
        "sha256": hashlib.sha256(b"grist for the mill").hexdigest(),
        "media_type": "text/plain",
        "owner": owner.username,
        "url": f"{API}/{file_id}",
        "content_url": f"{API}/{file_id}/content",
    }
    described = browser(owner).get(f"{API}/{file_id}").json()
    assert described == {**body, "created_at": created_at}
    (row,) = rows_of(owner)
    assert site.storage.path(row.path).read_bytes() == b"grist for the mill"


def test_the_content_is_downloaded_as_an_attachment_that_is_not_sniffed(site: Service) -> None:
    owner = make_user()
    file_id = api_upload(browser(owner), "page.html", b"<b>hi</b>").json()["id"]
    response = browser(owner).get(f"{API}/{file_id}/content")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"<b>hi</b>"
    response.close()
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["Content-Type"] == "text/plain"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_list_shows_the_callers_own_files_newest_first(site: Service) -> None:
    owner, other = make_user(), make_user()
    for name in ("first.txt", "second.txt"):
        assert api_upload(browser(owner), name, b"x").status_code == 201
    api_upload(browser(other), "theirs.txt", b"y")
    response = browser(owner).get(API)
    assert response.status_code == 200
    assert [f["name"] for f in response.json()] == ["second.txt", "first.txt"]


def test_staff_see_everyones_files_with_their_owners(site: Service) -> None:
    owner = make_user()
    file_id = api_upload(browser(owner), "mine.txt", b"x").json()["id"]
    staff = browser(make_user(staff=True))
    listed = {f["id"]: f["owner"] for f in staff.get(API).json()}
    assert listed[file_id] == owner.username
    download = staff.get(f"{API}/{file_id}/content")
    download.close()
    assert download.status_code == 200
    assert staff.delete(f"{API}/{file_id}").status_code == 204
    assert rows_of(owner) == []


@pytest.mark.parametrize("suffix", ["", "/content"])
def test_another_users_file_answers_like_one_that_does_not_exist(
    site: Service, suffix: str
) -> None:
    owner = make_user()
    file_id = api_upload(browser(owner), "private.txt", b"secret").json()["id"]
    stranger = browser(make_user())
    assert error_of(stranger.get(f"{API}/{file_id}{suffix}")) == not_found(file_id)
    assert error_of(stranger.get(f"{API}/{UNKNOWN}{suffix}")) == not_found(UNKNOWN)
    assert error_of(stranger.get(f"{API}/not-a-uuid{suffix}")) == not_found("not-a-uuid")


def test_another_users_file_cannot_be_deleted(site: Service) -> None:
    owner = make_user()
    file_id = api_upload(browser(owner), "private.txt", b"secret").json()["id"]
    response = browser().delete(f"{API}/{file_id}", headers=bearer(make_user()))
    assert error_of(response) == not_found(file_id)
    assert len(rows_of(owner)) == 1


def test_deleting_removes_the_row_and_the_bytes(site: Service) -> None:
    owner = make_user()
    file_id = api_upload(browser(owner), "gone.txt", b"soon gone").json()["id"]
    (row,) = rows_of(owner)
    response = browser().delete(f"{API}/{file_id}", headers=bearer(owner))
    assert response.status_code == 204
    assert rows_of(owner) == []
    assert not site.storage.path(row.path).exists()
    assert error_of(browser(owner).get(f"{API}/{file_id}")) == not_found(file_id)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", ""), ("post", ""), ("get", f"/{UNKNOWN}"), ("delete", f"/{UNKNOWN}")],
)
def test_anonymous_callers_are_asked_to_sign_in(site: Service, method: str, path: str) -> None:
    response = getattr(browser(), method)(f"{API}{path}")
    assert error_of(response) == (401, SIGN_IN)


def test_a_signed_in_browser_must_send_the_csrf_token_to_upload(site: Service) -> None:
    owner = make_user()
    strict = browser(owner, enforce_csrf_checks=True)
    response = strict.post(API, {"file": uploaded("a.txt", b"x")})
    assert response.status_code == 403
    assert rows_of(owner) == []


def test_an_upload_over_the_limit_is_refused_as_too_large_and_nothing_is_kept(
    small: Service,
) -> None:
    owner = make_user()
    response = api_upload(browser(owner), "big.txt", b"x" * 9)
    message = "the file is larger than the limit of 8\xa0bytes for data files"
    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "too_large",
            "message": f"file: {message}",
            "details": {"file": [message]},
        }
    }
    assert rows_of(owner) == []
    assert stored_files(small, owner) == []
    assert api_upload(browser(owner), "fits.txt", b"x" * 8).status_code == 201


@pytest.mark.parametrize(
    ("files", "field", "message"),
    [
        ({}, "file", "is required: upload the file as multipart/form-data"),
        ({"files": ["a.txt"]}, "files", "upload the file in the field 'file'"),
        ({"file": ["a.txt", "b.txt"]}, "file", "upload one file at a time"),
    ],
)
def test_an_upload_needs_exactly_one_file_in_the_field_file(
    site: Service, files: dict[str, list[str]], field: str, message: str
) -> None:
    owner = make_user()
    data = {
        key: [uploaded(n, b"x") for n in value]
        if isinstance(value, list)
        else uploaded(value, b"x")
        for key, value in files.items()
    }
    response = browser(owner).post(API, data)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {field: [message]}
    assert rows_of(owner) == []


def test_a_path_like_name_is_stored_as_a_safe_base_name(site: Service) -> None:
    owner = make_user()
    boundary = "BoUnDaRy"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="../../.secret r\xe9sum\xe9.txt"\r\n'
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
        "data\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    response = browser(owner).generic(
        "POST", API, body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["name"] == "secret_resume.txt"
    (row,) = rows_of(owner)
    assert row.path == f"datafiles/{owner.pk}/{row.pk}-secret_resume.txt"


# -- the operations ----------------------------------------------------------------------


def test_a_name_with_directories_keeps_only_its_base_name(site: Service) -> None:
    from gristmill.server import datafiles
    from gristmill.server.access import Caller

    owner = make_user()
    caller = Caller(owner.pk, owner.username)
    made = datafiles.create(caller, "../../etc/passwd", io.BytesIO(b"root"), service=site)
    assert (made.name, made.media_type) == ("passwd", "application/octet-stream")
    assert made.path == f"datafiles/{owner.pk}/{made.pk}-passwd"
    assert stored_files(site, owner) == [f"{made.pk}-passwd"]


def test_a_stream_over_the_limit_keeps_nothing(small: Service) -> None:
    from gristmill.server import datafiles
    from gristmill.server.access import Caller

    owner = make_user()
    with pytest.raises(TooLargeError) as refused:
        datafiles.create(
            Caller(owner.pk, owner.username), "big.bin", io.BytesIO(b"x" * 9), service=small
        )
    assert (refused.value.name, refused.value.max_size) == ("big.bin", 8)
    assert rows_of(owner) == []
    assert stored_files(small, owner) == []


def test_the_bytes_are_removed_when_the_row_cannot_be_written(
    site: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill.server import datafiles
    from gristmill.server.access import Caller
    from gristmill.server.models import DataFile

    def database_down(**fields: Any) -> None:
        raise RuntimeError("the database went away")

    owner = make_user()
    monkeypatch.setattr(DataFile.objects, "create", database_down)
    with pytest.raises(RuntimeError):
        datafiles.create(Caller(owner.pk, owner.username), "a.txt", io.BytesIO(b"x"), service=site)
    assert stored_files(site, owner) == []


# -- the page ----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(site: Service) -> None:
    response = browser().get("/datafiles/")
    assert response.status_code == 302
    assert response["Location"] == "/sign-in/?next=/datafiles/"


def test_the_page_lists_the_users_files_with_download_links(site: Service) -> None:
    owner, other = make_user(), make_user()
    file_id = api_upload(browser(owner), "mine.csv", b"a,b\n1,2\n").json()["id"]
    api_upload(browser(other), "theirs.txt", b"y")
    response = browser(owner).get("/datafiles/")
    assert response.status_code == 200
    html = page(response)
    assert html.texts("h1") == ["My data files"]
    (row,) = html.select("tr.datafile")
    assert row.attrs["id"] == f"datafile-{file_id}"
    link = row.one("a.download")
    assert (link.text, link.attrs["href"]) == ("mine.csv", f"{API}/{file_id}/content")
    assert row.texts("td.size") == ["8 bytes"]
    assert html.select("td.owner") == []


def test_staff_see_everyones_files_on_the_page(site: Service) -> None:
    owner = make_user()
    file_id = api_upload(browser(owner), "mine.csv", b"x").json()["id"]
    html = page(browser(make_user(staff=True)).get("/datafiles/"))
    assert html.texts("h1") == ["Data files"]
    assert html.one(f"#datafile-{file_id}").texts("td.owner") == [owner.username]


def test_a_file_uploaded_on_the_page_is_listed(site: Service) -> None:
    owner = make_user()
    client = browser(owner)
    response = client.post("/datafiles/", {"file": uploaded("notes.txt", b"words")})
    assert (response.status_code, response["Location"]) == (303, "/datafiles/")
    (row,) = rows_of(owner)
    assert (row.name, row.size) == ("notes.txt", 5)
    assert page(client.get("/datafiles/")).texts("tr.datafile a.download") == ["notes.txt"]


def test_an_upload_over_the_limit_is_shown_at_the_file_field(small: Service) -> None:
    owner = make_user()
    response = browser(owner).post("/datafiles/", {"file": uploaded("big.txt", b"x" * 9)})
    assert response.status_code == 413
    assert page(response).texts("#field-file .field-error") == [
        "the file is larger than the limit of 8 bytes for data files"
    ]
    assert rows_of(owner) == []
    assert stored_files(small, owner) == []


def test_a_file_is_deleted_with_its_button(site: Service) -> None:
    owner = make_user()
    client = browser(owner, enforce_csrf_checks=True)
    file_id = api_upload(browser(owner), "gone.txt", b"x").json()["id"]
    html = page(client.get("/datafiles/"))
    form = html.one(f"#datafile-{file_id}").one("form")
    token = form.one("input").attrs["value"]
    assert client.post(form.attrs["action"]).status_code == 403  # no CSRF token
    response = client.post(form.attrs["action"], {"csrfmiddlewaretoken": token})
    assert (response.status_code, response["Location"]) == (303, "/datafiles/")
    assert rows_of(owner) == []


def test_another_users_file_cannot_be_deleted_on_the_page(site: Service) -> None:
    owner = make_user()
    file_id = api_upload(browser(owner), "kept.txt", b"x").json()["id"]
    response = browser(make_user()).post(f"/datafiles/{file_id}/delete/")
    assert response.status_code == 404
    assert page(response).texts("#error-message") == [f"No data file with id '{file_id}'."]
    assert len(rows_of(owner)) == 1


def test_deleting_is_not_done_by_a_get(site: Service) -> None:
    owner = make_user()
    file_id = api_upload(browser(owner), "kept.txt", b"x").json()["id"]
    assert browser(owner).get(f"/datafiles/{file_id}/delete/").status_code == 405
    assert len(rows_of(owner)) == 1

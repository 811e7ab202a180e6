"""JSON documents and conversions in a real browser against a live server: a JSON data file
uploaded on the data files page is found by a JSON path on the documents page, read back, and
converted to CSV with its row's button."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Server
from tests.e2e.test_browser import browser, page
from tests.e2e.test_browser_accounts import make_user, sign_in

__all__ = ["browser", "page"]  # the fixtures, shared with the other browser tests


def test_a_json_data_file_is_found_by_a_json_path_and_converted_to_csv(
    server: Server, page: Any, tmp_path: Path
) -> None:
    name = make_user(server)
    sign_in(page, server, name)
    page.click("nav.account >> text=Data files")
    page.wait_for_url("**/datafiles/")
    items = [{"id": 1, "meta": {"source": "census"}}, {"id": 2, "meta": {"source": "survey"}}]
    kept = tmp_path / "records.json"
    kept.write_text(json.dumps(items))
    page.set_input_files("#id_file", str(kept))
    page.click("#upload-button")
    page.wait_for_selector("#datafiles tr.datafile")

    page.click("#documents-link")
    page.wait_for_url("**/documents/")
    page.fill("#id_path", "1.meta.source")
    page.fill("#id_value", "survey")
    page.click("#search-button")
    page.wait_for_selector("#documents tr.document")
    assert page.text_content("#documents a.document-link").strip() == "records.json"
    page.fill("#id_value", "census")
    page.click("#search-button")
    page.wait_for_selector("#no-documents")

    page.fill("#id_path", "0.meta.source")
    page.click("#search-button")
    page.click("#documents a.document-link")
    page.wait_for_url("**/api/v1/datafiles/*/document")
    assert json.loads(page.text_content("body")) == items

    page.goto(f"{server.url}datafiles/")
    page.select_option("#datafiles select[name=to]", "csv")
    page.click("#datafiles button.convert")
    page.wait_for_selector("#datafiles tr.datafile >> text=records.csv")
    csv_link = page.get_attribute("#datafiles a.download >> text=records.csv", "href")
    with server.client() as client:  # the browser downloads attachments: read it over HTTP
        for cookie in page.context.cookies():
            client.cookies.set(cookie["name"], cookie["value"])
        response = client.get(csv_link)
    assert response.status_code == 200
    assert response.text.splitlines() == ["id,meta/source", "1,census", "2,survey"]

"""JSON documents and conversions through the Python client, against a live server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gristmill.client import AsyncClient, Client, NotFoundError, UnauthenticatedError
from tests.e2e.conftest import Server
from tests.e2e.test_python_client import client, key, signed_in

__all__ = ["client", "key", "signed_in"]  # the fixtures, shared with the client tests


def test_a_json_data_file_is_read_back_searched_and_converted(
    client: Client, signed_in: Client, tmp_path: Path
) -> None:
    items = [{"id": 1, "meta": {"source": "client-census"}}, {"id": 2, "meta": {"source": "x"}}]
    source = tmp_path / "records.json"
    source.write_text(json.dumps(items))
    kept = signed_in.upload_datafile(source)
    assert signed_in.document(kept["id"]) == items
    found = signed_in.search_documents("0.meta.source", "client-census", per_page=10)
    assert [result["id"] for result in found["results"]] == [kept["id"]]
    assert signed_in.search_documents("0.meta.source", "nothing")["count"] == 0
    converted = signed_in.convert_datafile(kept["id"], "csv")
    assert converted["name"] == "records.csv"
    copy = signed_in.download_datafile(converted["id"], tmp_path / "records.csv")
    assert copy.read_text().splitlines() == ["id,meta/source", "1,client-census", "2,x"]
    with pytest.raises(NotFoundError, match="is not kept as a JSON document"):
        signed_in.document(converted["id"])
    with pytest.raises(UnauthenticatedError):
        client.search_documents("a")
    signed_in.delete_datafile(kept["id"])
    signed_in.delete_datafile(converted["id"])


def test_the_async_client_searches_documents_too(server: Server, key: str, tmp_path: Path) -> None:
    source = tmp_path / "async.json"
    source.write_text(json.dumps({"meta": {"source": "async-census"}}))

    async def search() -> list[str]:
        async with AsyncClient(server.url, token=key) as grace:
            kept = await grace.upload_datafile(source)
            assert await grace.document(kept["id"]) == {"meta": {"source": "async-census"}}
            found = await grace.search_documents("meta.source", "async-census")
            await grace.delete_datafile(kept["id"])
            return [result["name"] for result in found["results"]]

    assert asyncio.run(search()) == ["async.json"]

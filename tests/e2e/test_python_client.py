"""``gristmill.client`` against a live ``gristmill serve``: every method, both clients."""

from __future__ import annotations

import asyncio
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gristmill.client import (
    AsyncClient,
    Client,
    ConflictError,
    DataFile,
    Entry,
    InvalidError,
    Json,
    NotFoundError,
    RunOutputs,
    ServerUnreachableError,
    Text,
    UnauthenticatedError,
    Url,
    WaitTimeoutError,
)
from tests.e2e.conftest import Server
from tests.integration.conftest import wait_until

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    """An API token of a staff user made on the server's command line."""
    env = {"DJANGO_SUPERUSER_PASSWORD": "a long pass phrase"}
    made = server.command(
        "manage", "createsuperuser", "--noinput", "--username", "grace",
        "--email", "grace@example.com", **env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    created = server.command("token", "create", "grace", "--name", "client tests", **env)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, token="") as anonymous:
        yield anonymous


@pytest.fixture
def signed_in(server: Server, key: str) -> Iterator[Client]:
    with Client(server.url, token=key) as grace:
        yield grace


def test_a_file_submitted_followed_and_its_outputs_downloaded(
    client: Client, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("quiet words")
    run = client.submit("upper", note)
    seen: list[str] = []
    final = client.wait(run["id"], timeout=60, progress=lambda status: seen.append(status["state"]))
    assert final["state"] == "succeeded"
    assert seen[-1] == "succeeded"
    assert [line["text"] for line in client.follow(run["id"])] == ["shouted 11 characters"]
    assert client.log(run["id"])["lines"][0]["step"] == "shout"
    assert client.results(run["id"])["steps"][0]["context"] is not None
    [output] = client.outputs(run["id"])
    one = client.download(run["id"], output["step"], output["name"], tmp_path / "one.txt")
    assert one.read_text() == "QUIET WORDS"
    archive = client.download_zip(run["id"], tmp_path / "all" / "outputs.zip")
    with zipfile.ZipFile(archive) as opened:
        assert opened.read("shout/shouted.txt") == b"QUIET WORDS"
    assert sorted(p.name for p in archive.parent.iterdir()) == ["outputs.zip"]


def test_text_and_json_inputs_and_parameters(client: Client) -> None:
    text = client.submit("upper", Text("inline words", name="words.txt"))
    assert client.wait(text["id"], timeout=60)["state"] == "succeeded"
    value = client.submit("json-only", Json({"a": 1}), params={"value": 7})
    assert client.wait(value["id"], timeout=60)["state"] == "succeeded"
    assert client.results(value["id"])["steps"][0]["context"] is not None
    pipelines = {p["name"]: p for p in client.pipelines()}
    assert "upper" in pipelines
    assert client.pipeline("upper")["name"] == "upper"


def test_a_refusal_raises_the_invalid_error_with_each_field(client: Client) -> None:
    with pytest.raises(InvalidError) as refused:
        client.submit("trivial", params={"value": "many"})
    assert (refused.value.status, refused.value.code) == (400, "invalid")
    assert refused.value.details == {"params.value": ["Input should be a valid integer"]}
    with pytest.raises(InvalidError) as private:
        client.submit("any-source", Url("http://10.0.0.5/x.csv"))
    assert private.value.details == {
        "inputs": [
            "http://10.0.0.5/x.csv: 10.0.0.5 is not a public address; "
            "only public addresses can be fetched"
        ]
    }
    with pytest.raises(NotFoundError) as unknown:
        client.pipeline("no-such-pipeline")
    assert unknown.value.status == 404


def test_local_files_cannot_travel_with_inline_inputs(client: Client, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("x")
    with pytest.raises(ValueError) as mixed:
        client.submit("any-source", note, Text("y"))
    assert str(mixed.value) == (
        "Text(text='y', name=None) cannot be sent with local files: send texts, JSON values "
        "and one step's outputs in a submission without files"
    )


def test_an_earlier_runs_outputs_as_inputs(client: Client) -> None:
    first = client.submit("upper", Text("first"))
    assert client.wait(first["id"], timeout=60)["state"] == "succeeded"
    second = client.submit("any-source", RunOutputs(first["id"], step="shout"))
    assert client.wait(second["id"], timeout=60)["state"] == "succeeded"
    assert "FIRST" in str(client.results(second["id"])["steps"][0]["context"])


def test_cancel_then_a_second_cancel_is_a_conflict(client: Client, tmp_path: Path) -> None:
    run = client.submit("holding", params={"control": str(tmp_path)})
    wait_until(lambda: (tmp_path / "started-1").exists(), 30, "the held step to start")
    with pytest.raises(WaitTimeoutError) as waited:
        client.wait(run["id"], timeout=0)
    assert waited.value.message == f"the run {run['id']} had not ended after 0 s (it is running)"
    assert client.cancel(run["id"]) == {"state": "running"}  # it ends cancelled: see wait
    assert client.wait(run["id"], timeout=60)["state"] == "cancelled"
    with pytest.raises(ConflictError) as again:
        client.cancel(run["id"])
    assert (again.value.status, again.value.message) == (
        409,
        "the run has already ended (cancelled); there is nothing to cancel",
    )


def test_rerun_and_delete(client: Client) -> None:
    run = client.submit("trivial", params={"value": 2})
    assert client.wait(run["id"], timeout=60)["state"] == "succeeded"
    client.rerun(run["id"])
    assert client.wait(run["id"], timeout=60)["state"] == "succeeded"
    client.delete(run["id"])
    assert client.status(run["id"])["state"] == "expired"
    with pytest.raises(NotFoundError) as unknown:
        client.delete(MISSING)
    assert unknown.value.message == f"no run with id '{MISSING}'"


def test_pin_is_for_signed_in_owners(client: Client, signed_in: Client) -> None:
    run = signed_in.submit("trivial")
    assert signed_in.wait(run["id"], timeout=60)["state"] == "succeeded"
    assert signed_in.pin(run["id"]) is True
    assert signed_in.status(run["id"])["pinned"] is True
    assert signed_in.pin(run["id"], pinned=False) is False
    with pytest.raises(NotFoundError):
        client.pin(run["id"])


def test_data_files_kept_used_downloaded_and_deleted(
    client: Client, signed_in: Client, tmp_path: Path
) -> None:
    survey = tmp_path / "survey.txt"
    survey.write_text("kept words")
    kept = signed_in.upload_datafile(survey)
    assert kept["name"] == "survey.txt"
    assert kept["id"] in [d["id"] for d in signed_in.datafiles()]
    assert signed_in.datafile(kept["id"])["size"] == len("kept words")
    copy = signed_in.download_datafile(kept["id"], tmp_path / "copy.txt")
    assert copy.read_text() == "kept words"
    run = signed_in.submit("any-source", survey, DataFile(kept["id"]))  # a form: file first
    assert signed_in.wait(run["id"], timeout=60)["state"] == "succeeded"
    assert str(signed_in.results(run["id"])["steps"][0]["context"]).count("kept words") == 2
    signed_in.delete_datafile(kept["id"])
    with pytest.raises(NotFoundError):
        signed_in.datafile(kept["id"])
    with pytest.raises(UnauthenticatedError) as anonymous:
        client.datafiles()
    assert (anonymous.value.status, anonymous.value.code) == (401, "unauthenticated")


def test_tokens_made_used_and_revoked(server: Server, signed_in: Client) -> None:
    made = signed_in.create_token("laptop")
    assert made["key"].startswith("gm_")
    assert "laptop" in [t["name"] for t in signed_in.tokens()]
    with Client(server.url, token=made["key"]) as laptop:
        assert "laptop" in [t["name"] for t in laptop.tokens()]
        signed_in.delete_token(made["id"])
        with pytest.raises(UnauthenticatedError):
            laptop.tokens()


def test_the_token_comes_from_the_environment(
    server: Server, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRISTMILL_TOKEN", key)
    with Client(server.url) as client:
        assert client.tokens()


def test_an_unreachable_server(tmp_path: Path) -> None:
    with Client("http://127.0.0.1:9") as client, pytest.raises(ServerUnreachableError) as down:
        client.status(MISSING)
    assert down.value.message.startswith("cannot reach the server at http://127.0.0.1:9: ")


def test_the_async_client_has_the_same_methods(server: Server, tmp_path: Path) -> None:
    async def use() -> tuple[dict[str, Any], list[str], bytes]:
        async with AsyncClient(server.url, token="") as client:
            run = await client.submit("upper", Text("async words"))
            seen: list[dict[str, Any]] = []
            final = await client.wait(run["id"], timeout=60, progress=seen.append)
            lines = [line["text"] async for line in client.follow(run["id"])]
            archive = await client.download_zip(run["id"], tmp_path / "outputs.zip")
            with pytest.raises(ConflictError):
                await client.cancel(run["id"])
            with pytest.raises(NotFoundError):
                await client.status(MISSING)
            return final, lines, zipfile.ZipFile(archive).read("shout/shouted.txt")

    final, lines, shouted = asyncio.run(use())
    assert final["state"] == "succeeded"
    assert lines == ["shouted 11 characters"]
    assert shouted == b"ASYNC WORDS"


def test_many_runs_submitted_at_once_all_or_none(client: Client) -> None:
    runs = client.submit_many(
        "upper", [Entry([Text("one")]), {"inputs": [{"kind": "text", "text": "two"}]}]
    )
    assert len(runs) == 2
    for run in runs:
        assert client.wait(run["id"], timeout=60)["state"] == "succeeded"
    with pytest.raises(InvalidError) as refused:
        client.submit_many("trivial", [Entry(), Entry(params={"value": "many"})])
    assert refused.value.details == {"entries.1.params.value": ["Input should be a valid integer"]}


def test_a_bulk_submission_takes_no_local_files(client: Client, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"entry 0: .* is a local file"):
        client.submit_many("upper", [Entry([tmp_path / "note.txt"])])


def test_the_async_client_submits_many(server: Server) -> None:
    async def use() -> list[str]:
        async with AsyncClient(server.url, token="") as client:
            runs = await client.submit_many("upper", [Entry([Text("a")]), Entry([Text("b")])])
            return [(await client.wait(run["id"], timeout=60))["state"] for run in runs]

    assert asyncio.run(use()) == ["succeeded", "succeeded"]


def test_a_run_names_its_ancestor_and_its_status_links_to_it(client: Client) -> None:
    earlier = client.submit("compared", Text("a\n"))
    assert client.wait(earlier["id"], timeout=60)["state"] == "succeeded"

    later = client.submit("compared", Text("a\nb\n"), ancestor=earlier["url"])
    assert client.wait(later["id"], timeout=60)["state"] == "succeeded"

    assert client.status(later["id"])["ancestor"]["id"] == earlier["id"]
    contexts = {s["name"]: s["context"] for s in client.results(later["id"])["steps"]}
    assert contexts["compare"] == {"comparison": f"+1 lines since run {earlier['id']}"}
    [made] = client.submit_many("compared", [Entry([Text("a")], ancestor=earlier["id"])])
    assert client.wait(made["id"], timeout=60)["state"] == "succeeded"
    assert client.status(made["id"])["ancestor"]["id"] == earlier["id"]

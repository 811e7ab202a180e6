"""The requests the client builds for submissions: the ancestor and the notification wishes
are sent, each only when given, in a JSON body, a multipart form and bulk entries alike."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from gristmill.client import Entry, Text, calls


def test_a_json_submission_carries_the_ancestor_and_the_wishes() -> None:
    with ExitStack() as files:
        call = calls.submit(
            "p", [Text("a")], {"n": 1}, files, "r1", notify_email=False, webhook_url="https://h/"
        )
    assert call.json == {
        "params": {"n": 1},
        "inputs": [{"kind": "text", "text": "a"}],
        "ancestor": "r1",
        "notify_email": False,
        "webhook_url": "https://h/",
    }


def test_a_submission_without_them_sends_none_of_them() -> None:
    with ExitStack() as files:
        call = calls.submit("p", [], None, files)
    assert call.json == {"params": {}, "inputs": []}


def test_a_multipart_submission_carries_them_as_form_fields(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with ExitStack() as files:
        call = calls.submit(
            "p",
            [tmp_path / "f.txt"],
            None,
            files,
            "r1",
            notify_email=True,
            webhook_url="https://h/",
        )
        assert call.data is not None
        assert (call.data["ancestor"], call.data["notify_email"], call.data["webhook_url"]) == (
            "r1",
            "true",
            "https://h/",
        )


def test_bulk_entries_carry_them_each_only_when_given() -> None:
    call = calls.submit_many(
        "p",
        [
            Entry([Text("a")], ancestor="r1", notify_email=True, webhook_url="https://h/"),
            Entry(params={"n": 2}),
        ],
    )
    assert call.json == {
        "entries": [
            {
                "params": {},
                "inputs": [{"kind": "text", "text": "a"}],
                "ancestor": "r1",
                "notify_email": True,
                "webhook_url": "https://h/",
            },
            {"params": {"n": 2}, "inputs": []},
        ]
    }

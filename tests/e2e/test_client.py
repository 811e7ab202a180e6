"""The gristmill command as a client of a live server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gristmill.client import Client
from tests.e2e.conftest import Server, _clean_env


def gristmill(server: Server, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gristmill", *args, "--server", server.url],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_submit_wait_status_logs_and_download(server: Server, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("quiet words")
    submitted = gristmill(server, "submit", "upper", str(note), "--wait", cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    run_id = submitted.stdout.splitlines()[0]
    assert "succeeded" in submitted.stdout

    status = gristmill(server, "status", run_id, cwd=tmp_path)
    assert status.stdout.splitlines()[:2] == [
        f"run {run_id} succeeded (upper)",
        status.stdout.splitlines()[1],
    ]
    assert status.stdout.splitlines()[1].startswith("  shout: succeeded")

    logs = gristmill(server, "logs", run_id, cwd=tmp_path)
    assert logs.stdout.strip() == "shout shouted 11 characters"

    downloaded = gristmill(server, "download", run_id, "-o", "out", cwd=tmp_path)
    assert downloaded.returncode == 0, downloaded.stderr
    assert (tmp_path / "out" / "shout" / "shouted.txt").read_text() == "QUIET WORDS"


def test_a_refused_submission_prints_each_problem_and_exits_2(
    server: Server, tmp_path: Path
) -> None:
    done = gristmill(server, "submit", "trivial", "-p", "value=many", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: params.value: Input should be a valid integer")


def test_parameters_given_as_text_are_sent_as_the_values_their_schema_asks_for(
    server: Server, tmp_path: Path
) -> None:
    done = gristmill(server, "submit", "trivial", "-p", "value=5", "-p", "control=7", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    with server.client() as client:
        status = client.get(f"/api/v1/runs/{run_id}").json()
    assert status["pipeline"] == "trivial"


def test_a_failed_run_exits_1_with_its_message(server: Server, tmp_path: Path) -> None:
    done = gristmill(server, "submit", "failing", "--wait", cwd=tmp_path)
    assert done.returncode == 1
    assert "error: row 3 has no 'id' field" in done.stdout


def test_an_unknown_run_is_reported(server: Server, tmp_path: Path) -> None:
    done = gristmill(server, "status", "00000000-0000-4000-8000-000000000000", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")


def test_an_unreachable_server_is_reported(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gristmill", "status", "x", "--server", "http://127.0.0.1:9"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot reach the server at http://127.0.0.1:9")


def test_a_token_made_on_the_command_line_lets_the_client_act_as_its_user(
    server: Server, tmp_path: Path
) -> None:
    def admin(*args: str) -> subprocess.CompletedProcess[str]:
        return server.command(*args, DJANGO_SUPERUSER_PASSWORD="a long pass phrase")

    made = admin(
        "manage", "createsuperuser", "--noinput", "--username", "ada", "--email", "ada@example.com"
    )
    assert made.returncode == 0, made.stderr
    key = admin("token", "create", "ada", "--name", "e2e")
    assert key.returncode == 0, key.stderr
    assert key.stdout.startswith("gm_")
    unknown = admin("token", "create", "nobody")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        2,
        "error: there is no user named 'nobody'",
    )

    anonymous = gristmill(server, "submit", "members-only", cwd=tmp_path)
    assert anonymous.returncode == 2
    assert "sign in to use the pipeline 'members-only'" in anonymous.stderr

    token = {"GRISTMILL_TOKEN": key.stdout.strip()}
    argv = ["submit", "members-only", "--wait", "--server", server.url]
    done = subprocess.run(
        [sys.executable, "-m", "gristmill", *argv],
        cwd=tmp_path,
        env=_clean_env(**token),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.splitlines()[0]
    hidden = gristmill(server, "status", run_id, cwd=tmp_path)
    assert hidden.returncode != 0
    assert f"no run with id '{run_id}'" in hidden.stderr


def test_bulk_submission_from_a_json_lines_file_prints_every_id(
    server: Server, tmp_path: Path
) -> None:
    lines = tmp_path / "runs.jsonl"
    lines.write_text('{"params": {"value": 2}}\n\n{}\n')

    done = gristmill(
        server, "submit", "trivial", "--bulk", str(lines), "-p", "control=x", cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    run_ids = done.stdout.split()
    assert len(run_ids) == 2
    assert done.stderr.strip() == "submitted 2 runs"
    with Client(server.url, token="") as client:
        for run_id in run_ids:
            assert client.wait(run_id, timeout=60)["state"] == "succeeded"
        results = [client.results(r)["steps"][0]["context"] for r in run_ids]
    assert results == [{"ok": True, "value": 2}, {"ok": True, "value": 1}]


def test_a_bad_line_of_a_bulk_file_is_named_by_its_number(server: Server, tmp_path: Path) -> None:
    lines = tmp_path / "runs.jsonl"
    lines.write_text('{}\n\n{"params": {"value": "many"}}\n')
    refused = gristmill(server, "submit", "trivial", "--bulk", str(lines), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: line 3: params.value: Input should be a valid integer"
    assert refused.stdout == ""

    lines.write_text('{}\n{"params": \n')
    broken = gristmill(server, "submit", "trivial", "--bulk", str(lines), cwd=tmp_path)
    assert broken.returncode == 2
    assert broken.stderr.strip() == ("error: line 2: not JSON (Expecting value at column 11)")


def test_submit_names_an_ancestor(server: Server, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("a\n")
    first = gristmill(server, "submit", "compared", str(note), "--wait", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    earlier = first.stdout.splitlines()[0]

    second = gristmill(server, "submit", "compared", str(note), "--ancestor", earlier, cwd=tmp_path)

    assert second.returncode == 0, second.stderr
    with Client(server.url, token="") as client:
        assert client.status(second.stdout.strip())["ancestor"]["id"] == earlier
    refused = gristmill(server, "submit", "compared", str(note), "--ancestor", "x", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == "error: ancestor: 'x' is neither a run id nor a run's address"

"""Files handed on between steps by real workers, across a retried attempt; what non-staff
callers see of a run through the real API and pages holds no server path, and staff-only result
keys are shown to staff alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gristmill import RunState
from gristmill.app.service import Service
from gristmill.app.submission import submit, wait
from gristmill.executors.inline import run_inline
from tests.integration.conftest import Workers, wait_until
from tests.integration.test_access import API, browser, make_user


def _words(tmp_path: Path) -> Path:
    path = tmp_path / "words.txt"
    path.write_text("hand it on", encoding="utf-8")
    return path


def test_files_are_handed_on_across_a_retried_attempt(
    service: Service, workers: Workers, control: Path, tmp_path: Path
) -> None:
    workers.start(2)
    run_id = submit("handing-on", [_words(tmp_path)], {"control": str(control)}, service=service)
    # The last step kills its own worker on attempt 1; the run is retried on attempt 2.
    wait_until((control / "started-1").exists, timeout=30, message="attempt 1 of the last step")
    status = wait(run_id, timeout=60, service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    shout = status.result("shout")
    assert shout == {"text": "HAND IT ON", "attempt": 2, "where": shout["where"]}
    # The retry reused the first step's result and read the file attempt 1 made.
    steps = service.store.get_steps(run_id)
    assert steps["upper"].attempt == 1 and steps["shout"].attempt == 2
    assert "/a1/upper/upper.txt" in shout["where"]
    assert status.result("count")["stdout_tail"] == "10 upper/upper.txt"


def _everything_shown(client: Any, run_id: str) -> str:
    """Every answer about the run a caller can read, concatenated."""
    texts = []
    for path in ("", "/log", "/results", "/outputs"):
        response = client.get(f"{API}/runs/{run_id}{path}")
        assert response.status_code == 200, (path, response.content)
        texts.append(response.content.decode())
    response = client.get(f"/runs/{run_id}/")
    assert response.status_code == 200
    texts.append(response.content.decode())
    return "\n".join(texts)


def test_non_staff_see_no_server_path_and_no_staff_only_key(
    service: Service, site: None, tmp_path: Path
) -> None:
    run_id = submit("handing-on", [_words(tmp_path)], service=service)
    assert run_inline(service, run_id) == RunState.SUCCEEDED
    data_dir = str(Path(service.settings.data_dir).resolve())
    for client in (browser(), browser(make_user())):
        shown = _everything_shown(client, run_id)
        assert data_dir not in shown
        assert str(Path(service.settings.data_dir)) not in shown
        results = {
            step["name"]: step["context"]
            for step in client.get(f"{API}/runs/{run_id}/results").json()["steps"]
        }
        assert "argv" not in results["count"] and "where" not in results["shout"]
        assert results["count"]["command"] == ["wc", "upper/upper.txt"]
        log = [line["text"] for line in client.get(f"{API}/runs/{run_id}/log").json()["lines"]]
        assert "read words.txt" in log
        assert "reading upper/upper.txt" in log
    staff = browser(make_user(staff=True))
    results = {
        step["name"]: step["context"]
        for step in staff.get(f"{API}/runs/{run_id}/results").json()["steps"]
    }
    assert results["count"]["argv"] == ["wc", "-c", "upper/upper.txt"]
    assert results["shout"]["where"].startswith(data_dir)
    assert "/a1/upper/upper.txt" in staff.get(f"/runs/{run_id}/").content.decode()


def test_a_noisy_librarys_records_reach_the_log_collapsed_and_curated(
    service: Service, workers: Workers, site: None, tmp_path: Path
) -> None:
    workers.start(1)
    run_id = submit("noisy-library", [_words(tmp_path)], service=service)
    assert wait(run_id, timeout=60, service=service).state == RunState.SUCCEEDED
    lines = browser().get(f"{API}/runs/{run_id}/log").json()["lines"]
    assert [(line["stream"], line["text"]) for line in lines if line["step"] == "noisy"] == [
        ("logging", "WARNING chatty.library: odd value 0 in words.txt"),
        ("warning", "DeprecationWarning: this API is old"),
        ("logging", "WARNING chatty.library: odd value 1 in words.txt"),
        ("warning", "DeprecationWarning: this API is old"),
        ("logging", "WARNING chatty.library: odd value 2 in words.txt"),
        ("warning", "DeprecationWarning: this API is old"),
        ("logging", "… 1,997 more like this: WARNING chatty.library: odd value 0 in words.txt"),
        ("warning", "… 1,997 more like this: DeprecationWarning: this API is old"),
    ]

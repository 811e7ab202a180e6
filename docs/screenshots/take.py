"""Take the screenshots in this folder: python docs/screenshots/take.py [NAME ...] (needs
Chromium and Playwright, as the browser tests do); with names (``run-stale``), only those are
written. Starts its own servers on a temporary data directory."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e import conftest  # noqa: E402
from tests.e2e.conftest import start_server, stop_server  # noqa: E402
from tests.e2e.stale_pipelines import EDITION  # noqa: E402
from tests.e2e.test_browser import CHROMIUM, FLAGS  # noqa: E402

HERE = Path(__file__).resolve().parent
TEXT = "The mill grinds slowly, but the mill grinds fine.\nThe wheel turns; the stones turn.\n"


def stale_run(browser: Any, data: Path, shot: Callable[[Any, str], None]) -> None:
    """A succeeded run whose rules got a new edition: its page while the recomputation waits."""
    edition = data / "edition"
    edition.write_text("1")
    os.environ[EDITION] = str(edition)
    stale_pipelines = str(ROOT / "tests" / "e2e" / "stale_pipelines.py")
    server = start_server(data, pipelines=(conftest.PIPELINES, stale_pipelines))
    try:
        page = browser.new_page(viewport={"width": 900, "height": 700})
        page.set_default_timeout(20_000)
        page.goto(f"{server.url}pipelines/rules/")
        page.click("#submit-button")
        page.wait_for_selector("#results")
        edition.write_text("2")
        (data / "hold").touch()
        page.reload()
        page.wait_for_selector("#stale-notice")
        shot(page, "run-stale")
        (data / "hold").unlink()
        page.wait_for_selector("#result-ApplyRules:not(.stale)")
        page.close()
    finally:
        stop_server(server.process)


def map_runs(server: Any, page: Any, data: Path, shot: Callable[[str], None]) -> None:
    """A map step while it runs (its panel marked partial), and one ended with a failed batch."""
    items = data / "items.jsonl"
    items.write_text("".join(f'{{"n": {n}}}\n' for n in range(1, 20_001)))
    control = data / "map-control"
    control.mkdir()

    def submit(pipeline: str, params: dict[str, Any]) -> str:
        with items.open("rb") as file:
            answer = httpx.post(
                f"{server.url}api/v1/pipelines/{pipeline}/runs",
                files={"files": (items.name, file)},
                data={"params": json.dumps(params)},
            )
        run_id: str = answer.json()["id"]
        return run_id

    run_id = submit("milling", {"control": str(control), "hold": 19_999})
    page.goto(f"{server.url}runs/{run_id}/")
    page.wait_for_function(
        "() => (document.querySelector('#map-mill .map-partial') || {}).textContent"
        " === 'partial — 99 of 100 batches'"
    )
    shot("run-map-partial")
    (control / "release").touch()
    page.wait_for_selector("#run-state.state-succeeded")
    (control / "broken").touch()
    run_id = submit("mapping-continue", {"control": str(control), "bad": 7777})
    page.goto(f"{server.url}runs/{run_id}/")
    page.wait_for_selector("#run-state.state-succeeded")
    shot("run-map-failed-batch")


def main() -> None:
    wanted = set(sys.argv[1:])
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        control = data / "control"
        control.mkdir()
        server = start_server(data)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = browser.new_page(viewport={"width": 900, "height": 700})
                page.set_default_timeout(20_000)

                def shot_of(page: Any, name: str) -> None:
                    if not wanted or name in wanted:
                        page.screenshot(path=str(HERE / f"{name}.png"), full_page=True)

                def shot(name: str) -> None:
                    shot_of(page, name)

                page.goto(server.url)
                shot("pipelines")

                table = data / "table.csv"
                table.write_text("a,b\n")
                page.goto(f"{server.url}pipelines/upper/")
                page.set_input_files("#id_files", str(table))
                page.click("#submit-button")
                shot("form-error")

                page.goto(f"{server.url}pipelines/holding/")
                page.fill("#id_control", str(control))
                page.click("#submit-button")
                page.wait_for_selector("#step-hold.state-running")
                shot("run-running")
                (control / "release").touch()
                page.wait_for_selector("#results")
                shot("run-succeeded")

                notes = data / "notes.txt"
                notes.write_text(TEXT)
                page.goto(f"{server.url}pipelines/upper/")
                page.set_input_files("#id_files", str(notes))
                page.click("#submit-button")
                page.wait_for_selector("#results")
                shot("run-succeeded-with-output")

                page.goto(f"{server.url}pipelines/failing/")
                page.click("#submit-button")
                page.wait_for_selector("#run-error")
                shot("run-failed")

                (control / "release").unlink()
                (control / "hold-always").touch()
                page.goto(f"{server.url}pipelines/holding/")
                page.fill("#id_control", str(control))
                page.click("#submit-button")
                page.wait_for_selector("#step-hold.state-running")
                run_id = page.url.rstrip("/").rsplit("/", 1)[1]
                httpx.post(f"{server.url}api/v1/runs/{run_id}/cancel")
                page.wait_for_selector("#run-error")
                shot("run-cancelled")
                httpx.delete(f"{server.url}api/v1/runs/{run_id}")
                page.reload()
                page.wait_for_selector("#run-error")
                shot("run-expired")

                password = "a long pass phrase"
                server.command(
                    "manage", "createsuperuser", "--noinput", "--username", "ada",
                    "--email", "ada@example.com", DJANGO_SUPERUSER_PASSWORD=password,
                )  # fmt: skip
                page.goto(f"{server.url}sign-in/")
                shot("sign-in")
                page.fill("#id_username", "ada")
                page.fill("#id_password", password)
                page.click("#sign-in-form button[type=submit]")
                page.goto(f"{server.url}runs/")
                shot("runs")
                page.goto(f"{server.url}datafiles/")
                page.set_input_files("#id_file", str(notes))
                page.click("#upload-button")
                page.wait_for_selector("#datafiles")
                shot("datafiles")
                map_runs(server, page, data, shot)
                page.goto(f"{server.url}pipelines/members-only/")
                page.click("#submit-button")
                page.wait_for_selector("#results")
                page.click("#share-link-make")
                page.wait_for_selector("#share-link")
                shot("run-share")
                page.goto(f"{server.url}operator/")
                page.wait_for_selector("#runs-chart svg.plot")
                shot("operator")
                stale = data / "stale"
                stale.mkdir()
                stale_run(browser, stale, shot_of)
                browser.close()
        finally:
            stop_server(server.process)


if __name__ == "__main__":
    main()

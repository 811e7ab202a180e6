"""Take the screenshots in this folder: python docs/screenshots/take.py (needs Chromium and
Playwright, as the browser tests do). Starts its own server on a temporary data directory."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import start_server, stop_server  # noqa: E402
from tests.e2e.test_browser import CHROMIUM, FLAGS  # noqa: E402

HERE = Path(__file__).resolve().parent
TEXT = "The mill grinds slowly, but the mill grinds fine.\nThe wheel turns; the stones turn.\n"


def main() -> None:
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

                def shot(name: str) -> None:
                    page.screenshot(path=str(HERE / f"{name}.png"), full_page=True)

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
                browser.close()
        finally:
            stop_server(server.process)


if __name__ == "__main__":
    main()

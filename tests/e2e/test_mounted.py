"""gristmill as an app of another Django site: the example host project (examples/host) mounts
it under ``/tools/``, served by ``gristmill serve`` with the host's settings and worked by
``manage.py gristmill_worker``. Every page, script, redirect, API link and client follows the
prefix; the host's sign-in, templates and admin are used."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import service_absent
from tests.e2e.conftest import E2E_PIPELINES, _clean_env, finished, served_address, stop_server
from tests.e2e.test_browser import browser, page  # noqa: F401 - fixtures
from tests.integration.conftest import PIPELINES, _drop_postgres, _postgres_database

HOST = Path(__file__).resolve().parents[2] / "examples" / "host"
PASSWORD = "a long enough password 42"
# The host's own pages and static files (and the icon browsers ask every site for); everything
# of gristmill's must be under /tools/.
HOST_PATHS = ("/accounts/", "/admin/", "/static/", "/favicon.ico")


@dataclass
class Host:
    """The running example host: its address, the gristmill prefix on it, and its commands."""

    url: str
    data_dir: Path
    environ: dict[str, str]

    @property
    def tools(self) -> str:
        return f"{self.url}tools/"

    def manage(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``python manage.py ARGS`` in the host project."""
        return _run([sys.executable, "manage.py", *args], {**self.environ, **env})

    def gristmill(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``gristmill ARGS`` with the host's settings."""
        return _run([sys.executable, "-m", "gristmill", *args], {**self.environ, **env})


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=HOST, env=env, capture_output=True, text=True, timeout=120)


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("w") as errors:
        return subprocess.Popen(
            argv,
            cwd=HOST,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            start_new_session=True,
        )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def host(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Host]:
    """The example host on a fresh SQLite or PostgreSQL database, with one user, one
    superuser, gristmill's test pipelines, a web server and one worker."""
    database_url = None
    if request.param == "postgres":
        database_url, reason = _postgres_database()
        if not database_url:
            service_absent(reason)
    data_dir = tmp_path_factory.mktemp(f"host-{request.param}")
    environ = _clean_env(
        DJANGO_SETTINGS_MODULE="host.settings",
        PYTHONPATH=os.pathsep.join([str(HOST), os.environ.get("PYTHONPATH", "")]),
        HOST_DATA_DIR=str(data_dir),
        GRISTMILL_PIPELINES=f"{PIPELINES},{E2E_PIPELINES}",
        GRISTMILL_LEASE_SECONDS="5",
        GRISTMILL_DRAIN_SECONDS="5",
        GRISTMILL_KILL_GRACE="1",
        **({"HOST_DATABASE_URL": database_url} if database_url else {}),
    )
    running = Host("", data_dir, environ)
    for command in (
        ["migrate", "--verbosity", "0"],
        ["createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.org"],
        [
            "shell",
            "-c",
            f"from django.contrib.auth.models import User; "
            f"User.objects.create_user('alice', password={PASSWORD!r})",
        ],
    ):
        done = running.manage(*command, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
        assert done.returncode == 0, done.stderr
    server_log, worker_log = data_dir / "serve.log", data_dir / "worker.log"
    server = _start(
        [sys.executable, "-m", "gristmill", "serve", "--port", "0", "--workers", "0"],
        environ,
        server_log,
    )
    worker = _start(
        [sys.executable, "manage.py", "gristmill_worker", "-w", "1"], environ, worker_log
    )
    try:
        address = served_address(server)
        if address is None:
            pytest.fail(f"the host did not start:\n{server_log.read_text()}")
        running.url = address
        yield running
    finally:
        stop_server(server)
        stop_server(worker)
        if database_url:
            _drop_postgres(database_url)


@pytest.fixture(scope="module")
def token(host: Host) -> str:
    made = host.gristmill("token", "create", "alice", "--name", "mounted tests")
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture
def requests(page: Any) -> list[str]:  # noqa: F811 - the imported fixture
    """The paths of every request the page makes."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(urlsplit(request.url).path))
    return seen


def _outside(paths: list[str]) -> list[str]:
    """The paths neither gristmill's (under /tools/) nor the host's own."""
    return [p for p in paths if p != "/" and not p.startswith(("/tools/", *HOST_PATHS))]


def _sign_in(page: Any, username: str) -> None:  # noqa: F811
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-button")


def test_the_host_home_page_leads_to_the_tools_in_the_host_frame(
    host: Host,
    page: Any,  # noqa: F811
) -> None:
    page.goto(host.url)
    page.click("#tools-link")
    page.wait_for_url(host.tools)
    assert page.title() == "Pipelines · Example Lab"  # the host's base template
    assert page.is_visible("#site-header")
    href = page.get_attribute("a[href*='pipelines/upper/']", "href")
    assert href == "/tools/pipelines/upper/"


def test_a_run_from_the_form_updates_live_and_ends_with_its_results(
    host: Host,
    page: Any,  # noqa: F811
    requests: list[str],
    tmp_path: Path,
) -> None:
    control = tmp_path / "control"
    control.mkdir()
    page.goto(f"{host.tools}pipelines/holding/")
    page.fill("#id_control", str(control))
    page.click("#submit-button")
    page.wait_for_url(re.compile(r".*/tools/runs/[0-9a-f-]+/$"))
    page.wait_for_selector("#step-hold.state-running")  # run.js, polling the API
    (control / "release").touch()
    page.wait_for_selector("#results")
    assert page.text_content("#run-state").strip() == "succeeded"
    run_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert f"/tools/api/v1/runs/{run_id}" in requests
    assert "/static/gristmill/run.js" in requests
    assert _outside(requests) == []


def test_an_uploaded_file_gives_an_output_to_download_under_the_prefix(
    host: Host,
    page: Any,  # noqa: F811
    requests: list[str],
    tmp_path: Path,
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("quiet words")
    page.goto(f"{host.tools}pipelines/upper/")
    page.set_input_files("#id_files", str(note))
    page.click("#submit-button")
    page.wait_for_selector("#results")
    assert page.get_attribute("a.output", "href").startswith("/tools/api/v1/runs/")
    with page.expect_download() as download_info:
        page.click("a.output")
    saved = tmp_path / "downloaded.txt"
    download_info.value.save_as(saved)
    assert saved.read_text() == "QUIET WORDS"
    assert _outside(requests) == []


def test_signing_in_goes_through_the_host_login_and_back_to_the_tools(
    host: Host,
    page: Any,  # noqa: F811
    requests: list[str],
) -> None:
    page.goto(f"{host.tools}runs/")  # only for signed-in users
    page.wait_for_url("**/accounts/login/?next=/tools/runs/")
    _sign_in(page, "alice")
    page.wait_for_url(f"{host.tools}runs/")
    assert page.text_content("#site-user") == "alice"
    page.goto(f"{host.tools}pipelines/upper/")
    assert page.is_visible("a[href='/tools/datafiles/']")  # signed in on gristmill's pages
    assert _outside(requests) == []


def test_the_sign_in_link_of_the_form_is_the_host_login(host: Host, page: Any) -> None:  # noqa: F811
    page.goto(f"{host.tools}pipelines/any-source/")  # it takes data files: sign in for them
    href = page.get_attribute("#datafiles-note a", "href")
    assert href == "/accounts/login/?next=/tools/pipelines/any-source/"


def test_the_host_admin_shows_gristmill_runs(
    host: Host,
    token: str,
    page: Any,  # noqa: F811
) -> None:
    with httpx.Client(base_url=host.tools, timeout=30) as http:
        answer = http.post(
            "api/v1/pipelines/upper/runs",
            files={"files": ("a.txt", b"for the admin")},
            headers={"Authorization": f"Bearer {token}"},
        )
        run_id = answer.json()["id"]
    page.goto(f"{host.url}admin/")
    _sign_in_admin(page)
    page.goto(f"{host.url}admin/gristmill/run/")
    assert page.title() == "Select run to view | Django site admin"
    assert page.is_visible(f"#result_list a:has-text('{run_id}')")


def _sign_in_admin(page: Any) -> None:  # noqa: F811
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_the_api_links_follow_the_prefix(host: Host, token: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=host.url, timeout=30) as http:
        http.headers["Authorization"] = f"Bearer {token}"
        answer = http.post("tools/api/v1/pipelines/upper/runs", files={"files": ("a.txt", b"loud")})
        assert answer.status_code == 201, answer.text
        run = answer.json()
        links = {key: value for key, value in run.items() if key.endswith("url")}
        assert links["url"] == f"/tools/runs/{run['id']}/"
        assert all(
            value.startswith("/tools/api/v1/runs/") for key, value in links.items() if key != "url"
        ), links
        status = finished(http, run["status_url"], timeout=60)
        assert status["state"] == "succeeded"
        outputs = http.get(run["outputs_url"]).json()
        assert [item["url"] for item in outputs] == [
            f"/tools/api/v1/runs/{run['id']}/outputs/shout/shouted.txt"
        ]
        assert http.get(outputs[0]["url"]).text == "LOUD"
        assert http.get("tools/api/v1/pipelines/upper").json()["submit_url"] == (
            "/tools/api/v1/pipelines/upper/runs"
        )


def test_the_openapi_document_and_docs_page_are_under_the_prefix(host: Host) -> None:
    with httpx.Client(base_url=host.url, timeout=30) as http:
        document = http.get("tools/api/v1/openapi.json")
        assert document.status_code == 200
        paths = list(document.json()["paths"])
        assert paths and all(path.startswith("/tools/api/v1/") for path in paths)
        docs = http.get("tools/api/v1/docs")
        assert docs.status_code == 200
        assert "/tools/api/v1/openapi.json" in docs.text


def test_the_cli_submits_and_downloads_through_the_prefix(
    host: Host, token: str, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("from the shell")
    server = host.tools
    done = host.gristmill(
        "submit", "upper", str(note), "--wait", "--server", server, GRISTMILL_TOKEN=token
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[0]
    assert f"submitted: {host.tools}runs/{run_id}/" in done.stderr
    saved = host.gristmill(
        "download", run_id, "-o", str(tmp_path / "out"), "--server", server, GRISTMILL_TOKEN=token
    )
    assert saved.returncode == 0, saved.stderr
    assert (tmp_path / "out" / "shout" / "shouted.txt").read_text() == "FROM THE SHELL"


def test_the_python_client_works_through_the_prefix(host: Host, token: str, tmp_path: Path) -> None:
    from gristmill.client import Client

    note = tmp_path / "note.txt"
    note.write_text("by python")
    with Client(host.tools, token=token) as client:
        run = client.submit("upper", note)
        assert run["url"] == f"/tools/runs/{run['id']}/"
        assert client.wait(run["id"])["state"] == "succeeded"
        saved = client.download(run["id"], "shout", "shouted.txt", tmp_path / "got.txt")
        assert saved.read_text() == "BY PYTHON"
        assert [item["url"] for item in client.outputs(run["id"])] == [
            f"/tools/api/v1/runs/{run['id']}/outputs/shout/shouted.txt"
        ]


def test_the_worker_command_refuses_a_wrong_option_with_a_message(host: Host) -> None:
    done = host.manage("gristmill_worker", "--workers", "0")
    assert done.returncode == 1
    assert done.stderr.strip() == "CommandError: --workers must be at least 1, not 0"


def test_the_worker_command_names_a_wrong_setting(host: Host) -> None:
    done = host.manage("gristmill_worker", GRISTMILL_EXECUTOR="nope")
    assert done.returncode == 1
    assert "(gristmill.E001) GRISTMILL_EXECUTOR must be 'local' or 'celery', not 'nope'" in (
        done.stderr
    )

"""gristmill included under a prefix of another site's URLconf, and that site perhaps served below
a script name: every link it builds (API answers, pages, redirects) follows both. The host's
``GRISTMILL_*`` settings are gristmill's settings. (The whole example host project, served for
real, is tests/e2e/test_mounted.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import submit
from gristmill.errors import ConfigurationError
from tests.integration.conftest import HOST

if TYPE_CHECKING:
    from django.test import Client


def _host_urls() -> ModuleType:
    from django.http import HttpResponse
    from django.urls import include, path

    urls = ModuleType("host_test_urls")
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("", lambda request: HttpResponse("the host's home"), name="home"),
        path("tools/", include("gristmill.server.urls")),
    ]
    return urls


@pytest.fixture(params=["", "/site"], ids=["at-root", "below-a-script-name"])
def script_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def mounted(site: Service, script_name: str) -> Iterator[Client]:
    """A test client of a site that includes gristmill under ``tools/``, served below
    ``script_name``."""
    from django.test import Client, override_settings
    from django.urls import clear_script_prefix, set_script_prefix

    # What Django's WSGI handler does for each request, and its test client does not.
    set_script_prefix(f"{script_name}/")
    try:
        with override_settings(ROOT_URLCONF=_host_urls()):
            yield Client(HTTP_HOST=HOST, SCRIPT_NAME=script_name)
    finally:
        clear_script_prefix()


def test_a_submissions_links_follow_the_prefix(mounted: Client, script_name: str) -> None:
    answer = mounted.post(
        "/tools/api/v1/pipelines/trivial/runs", {"params": {}}, content_type="application/json"
    )
    assert answer.status_code == 201, answer.content
    run = answer.json()
    api = f"{script_name}/tools/api/v1/runs/{run['id']}"
    assert run["url"] == f"{script_name}/tools/runs/{run['id']}/"
    assert run["status_url"] == api
    assert run["log_url"] == f"{api}/log"
    assert run["outputs_zip_url"] == f"{api}/outputs.zip"


def test_a_pipelines_submit_url_follows_the_prefix(mounted: Client, script_name: str) -> None:
    answer = mounted.get("/tools/api/v1/pipelines/trivial").json()
    assert answer["submit_url"] == f"{script_name}/tools/api/v1/pipelines/trivial/runs"


def test_the_run_page_polls_the_api_under_the_prefix(
    mounted: Client, site: Service, script_name: str
) -> None:
    run_id = submit("trivial", [], service=site)
    html = mounted.get(f"/tools/runs/{run_id}/").content.decode()
    assert f'data-status-url="{script_name}/tools/api/v1/runs/{run_id}"' in html
    assert f'href="{script_name}/tools/"' in html  # the home link of gristmill's pages
    assert not re.search(r'(?:href|action|src)="/(?!site/|tools/|static/)', html)


@pytest.mark.parametrize(
    "page", ["", "runs/", "runs/shared/", "datafiles/", "settings/", "account/", "operator/"]
)
def test_a_staff_members_pages_link_only_under_the_prefix(
    mounted: Client, script_name: str, page: str
) -> None:
    from django.contrib.auth.models import User

    staff, _ = User.objects.get_or_create(username="mounted-staff", is_staff=True)
    mounted.force_login(staff)
    answer = mounted.get(f"/tools/{page}")
    assert answer.status_code == 200
    html = answer.content.decode()
    links = set(re.findall(r'(?:href|action|src)="(/[^"]*)"', html))
    assert f"{script_name}/tools/sign-out/" in links
    # The stylesheet is one of the site's static files (STATIC_URL); no admin link, as the
    # site has no admin.
    assert {link for link in links if not link.startswith(f"{script_name}/tools/")} == {
        "/static/gristmill/gristmill.css"
    }


def test_signing_in_is_asked_for_under_the_prefix(mounted: Client, script_name: str) -> None:
    answer = mounted.get("/tools/runs/")
    assert answer.status_code == 302
    assert answer["Location"] == f"{script_name}/tools/sign-in/?next={script_name}/tools/runs/"


def test_an_unknown_api_path_under_the_prefix_answers_json(mounted: Client) -> None:
    answer = mounted.get("/tools/api/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert "Content-Security-Policy" not in answer  # an API answer, not a page


def test_the_openapi_document_lists_paths_under_the_prefix(
    mounted: Client, script_name: str
) -> None:
    paths = list(mounted.get("/tools/api/v1/openapi.json").json()["paths"])
    assert paths and all(p.startswith(f"{script_name}/tools/api/v1/") for p in paths)


def test_a_projects_gristmill_settings_are_read_from_its_django_settings(
    databases: object, tmp_path: Path
) -> None:
    from django.test import override_settings

    from gristmill.server.conf import project_settings

    with override_settings(
        GRISTMILL_DATA_DIR=tmp_path,
        GRISTMILL_WORKERS=3,
        GRISTMILL_QUEUES=["fast", "slow"],
        GRISTMILL_EMAIL_TLS=True,
        GRISTMILL_PIPELINES="tests.integration.pipelines",
    ):
        settings = project_settings()
    assert settings.data_dir == tmp_path
    assert settings.workers == 3
    assert settings.queues == ("fast", "slow")
    assert settings.email_tls is True
    assert settings.pipelines == ("tests.integration.pipelines",)
    assert settings.database_url.startswith("sqlite:///")  # the project's own database


def test_a_wrong_project_setting_is_named(databases: object) -> None:
    from django.test import override_settings

    from gristmill.server.conf import project_settings

    with (
        override_settings(GRISTMILL_WORKERS="many"),
        pytest.raises(ConfigurationError, match="GRISTMILL_WORKERS must be a number, not 'many'"),
    ):
        project_settings()


def test_the_stand_alone_site_links_staff_to_its_admin(web: Client) -> None:
    from django.contrib.auth.models import User

    staff, _ = User.objects.get_or_create(username="standalone-staff", is_staff=True)
    web.force_login(staff)
    assert '<a href="/admin/">Admin</a>' in web.get("/").content.decode()


def test_a_site_without_gristmills_urls_or_ninja_is_warned(databases: object) -> None:
    from django.conf import settings
    from django.core.checks import run_checks
    from django.test import override_settings

    no_urls = ModuleType("no_gristmill_urls")
    no_urls.urlpatterns = []  # type: ignore[attr-defined]
    apps = [app for app in settings.INSTALLED_APPS if app != "ninja"]
    with override_settings(ROOT_URLCONF=no_urls, INSTALLED_APPS=apps):
        found = {message.id: message for message in run_checks()}
    assert found["gristmill.W001"].msg == "gristmill's pages and API are not in the site's URLs"
    assert found["gristmill.W002"].hint == 'Add "ninja" to INSTALLED_APPS.'


def test_a_wrong_gristmill_setting_of_a_site_is_a_check_error(databases: object) -> None:
    from django.core.checks import run_checks
    from django.test import override_settings

    with override_settings(GRISTMILL=None, GRISTMILL_WORKERS="many"):
        errors = [message for message in run_checks() if message.id == "gristmill.E001"]
    assert [error.msg for error in errors] == ["GRISTMILL_WORKERS must be a number, not 'many'"]


def test_the_stand_alone_site_passes_the_checks(databases: object) -> None:
    from django.core.checks import run_checks

    assert [m.id for m in run_checks() if str(m.id).startswith("gristmill.")] == []


def test_a_site_without_gristmills_api_still_answers_its_own_pages(site: Service) -> None:
    from django.http import HttpResponse
    from django.test import Client, override_settings
    from django.urls import path

    urls = ModuleType("pages_only_urls")
    urls.urlpatterns = [path("", lambda request: HttpResponse("home"))]  # type: ignore[attr-defined]
    with override_settings(ROOT_URLCONF=urls):
        answer = Client(HTTP_HOST=HOST).get("/")
    assert (answer.status_code, answer.content) == (200, b"home")
    assert "Content-Security-Policy" in answer  # a page, by gristmill's middleware


@pytest.mark.parametrize(("redirect", "expected"), [(None, "/tools/"), ("home", "/")])
def test_signing_out_goes_to_the_sites_logout_redirect_else_to_gristmill(
    mounted: Client, script_name: str, redirect: str | None, expected: str
) -> None:
    from django.contrib.auth.models import User
    from django.test import override_settings

    user, _ = User.objects.get_or_create(username="leaving")
    mounted.force_login(user)
    with override_settings(LOGOUT_REDIRECT_URL=redirect):
        answer = mounted.post("/tools/sign-out/")
    assert answer.status_code == 302
    assert answer["Location"] == f"{script_name}{expected}"

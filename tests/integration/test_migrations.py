"""The migrations describe the models exactly: no change to a model ships without one."""

from __future__ import annotations

import io
from typing import Any


def test_the_models_need_no_new_migration(databases: dict[str, Any]) -> None:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("makemigrations", "gristmill", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_the_generated_postgresql_functions_can_be_reversed_and_applied_again(
    databases: dict[str, Any],
) -> None:
    # Given the database at the latest migration, when 0008 is reversed, then gristmill_load
    # is 0006's again (a JSON array), and applying 0008 again brings back the object by name.
    from django.core.management import call_command
    from django.db import connections

    from tests.conftest import service_absent

    if not databases["pg_url"]:
        service_absent(databases["pg_reason"])

    def load_builds() -> str:
        with connections["postgres"].cursor() as cursor:
            cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'gristmill_load'")
            (source,) = cursor.fetchone()
        return "object" if "json_build_object(" in source else "array"

    quiet = {"verbosity": 0, "database": "postgres"}
    try:
        call_command("migrate", "gristmill", "0007", **quiet)
        before = load_builds()
    finally:
        call_command("migrate", "gristmill", **quiet)
    assert (before, load_builds()) == ("array", "object")

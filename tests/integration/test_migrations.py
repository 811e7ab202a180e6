"""The migrations describe the models exactly: no change to a model ships without one."""

from __future__ import annotations

import io
from typing import Any


def test_the_models_need_no_new_migration(databases: dict[str, Any]) -> None:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("makemigrations", "gristmill", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()

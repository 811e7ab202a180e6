"""The secret key made on first use (``gristmill.server.conf.secret_key``), and the settings
the type checker loads, which make none."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

from gristmill.server.conf import secret_key
from gristmill.settings import Settings


def test_a_new_install_gets_a_private_random_key_kept_for_next_time(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path / "data")
    key = secret_key(settings)
    path = tmp_path / "data" / "secret_key"
    assert len(key) > 40
    assert path.read_text(encoding="utf-8") == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key(settings) == key
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]  # no draft left


def test_a_configured_key_is_used_as_is(tmp_path: Path) -> None:
    settings = Settings.from_env({"GRISTMILL_SECRET_KEY": "k" * 50}, data_dir=tmp_path)
    assert secret_key(settings) == "k" * 50
    assert not (tmp_path / "secret_key").exists()


def test_the_type_checkers_settings_write_nothing_where_mypy_runs(tmp_path: Path) -> None:
    # mypy's django-stubs plugin imports the settings module named in pyproject.toml from the
    # checkout; the stand-alone settings would create gristmill-data/secret_key there.
    root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    module = pyproject["tool"]["django-stubs"]["django_settings_module"]
    assert module == "gristmill.server.typecheck_settings"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    done = subprocess.run(
        [sys.executable, "-c", f"import {module} as s; print(s.INSTALLED_APPS[-1])"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []

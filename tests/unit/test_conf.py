"""The secret key made on first use (``gristmill.server.conf.secret_key``)."""

from __future__ import annotations

import stat
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

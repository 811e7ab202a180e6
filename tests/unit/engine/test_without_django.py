"""The engine's unit tests need no Django: run them in a fresh interpreter and look at what it
imported."""

from __future__ import annotations

from pathlib import Path

from tests.unit.engine.conftest import fresh_pytest

HERE = Path(__file__).parent


def test_the_engine_unit_tests_pass_without_importing_django() -> None:
    args = ["-q", "-p", "no:cacheprovider", str(HERE), "--ignore", __file__]
    report, output = fresh_pytest(args, HERE.parents[2])
    assert report == {"exit": 0, "django": []}, output

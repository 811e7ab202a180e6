"""The pytest example of docs/pipelines.md ("Testing your pipelines") works as printed: its
pipeline module and its test file are taken from the page and run with pytest, without
Django."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.engine.conftest import fresh_pytest

PAGE = Path(__file__).parents[3] / "docs" / "pipelines.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_the_testing_example_of_the_pipelines_guide_passes(tmp_path: Path) -> None:
    blocks = python_blocks(PAGE.read_text(encoding="utf-8"))
    # The page's first csvstats module is the complete one ("A first pipeline").
    module = next(b for b in blocks if "\ncsvstats = Pipeline(" in b)
    (tests,) = [b for b in blocks if b.startswith("# tests/test_csvstats.py\n")]
    (tmp_path / "csvstats.py").write_text(module, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_csvstats.py").write_text(tests, encoding="utf-8")
    args = ["-q", "-p", "no:cacheprovider", "-W", "error", "tests/test_csvstats.py"]
    report, output = fresh_pytest(args, tmp_path)
    assert report == {"exit": 0, "django": []}, output
    assert "3 passed" in output

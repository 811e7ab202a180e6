"""The SQL store package without a database: it imports no Django, every statement it runs is
named in ``queries.sql`` and every named statement is used, and the generated PL/pgSQL covers
every column the store decodes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gristmill.store.sql
from gristmill.store.sql.columns import LOADED, RUN_COLUMNS, load_function
from gristmill.store.sql.queries import QUERIES, expand, parse

PACKAGE = Path(gristmill.store.sql.__file__).parent


def test_the_sql_store_imports_no_django() -> None:
    script = (
        "import json, sys\n"
        "import gristmill.store.sql, gristmill.store.sql.policy\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'django')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []


def test_queries_are_read_by_name_without_their_comments() -> None:
    text = "-- header\n\n-- name: one\n-- why\nSELECT 1\n  FROM x\n\n-- name: two\nSELECT 2\n"
    assert parse(text) == {"one": "SELECT 1 FROM x", "two": "SELECT 2"}


def test_a_query_named_twice_is_refused() -> None:
    with pytest.raises(ValueError) as refused:
        parse("-- name: one\nSELECT 1\n-- name: one\nSELECT 2\n")
    assert str(refused.value) == "the query 'one' is defined twice"


def test_a_fragment_is_written_into_the_statements_that_name_it() -> None:
    queries = expand(
        {"load": "(SELECT n FROM t WHERE t.id = {arg})", "use": "SELECT {load(r.id)} FROM r"}
    )
    assert queries["use"] == "SELECT (SELECT n FROM t WHERE t.id = r.id) FROM r"


def test_an_unknown_fragment_is_refused() -> None:
    with pytest.raises(ValueError) as refused:
        expand({"use": "SELECT {nothing(%s)}"})
    assert str(refused.value) == "no fragment 'nothing' for {nothing(%s)}"


def test_every_named_query_is_used_and_every_used_name_exists() -> None:
    code = "".join(path.read_text() for path in PACKAGE.glob("*.py"))
    used = set(re.findall(r'(?:Q|QUERIES)\["(\w+)"\]', code))
    fragments = set(re.findall(r"\{(\w+)\(", (PACKAGE / "queries.sql").read_text()))
    assert used | fragments == set(QUERIES)


def test_the_postgresql_load_names_every_column_the_store_decodes() -> None:
    function = load_function()
    named = re.findall(r"'(\w+)', ", function)
    assert set(LOADED) <= set(named)
    assert named[: len(RUN_COLUMNS)] == list(RUN_COLUMNS)

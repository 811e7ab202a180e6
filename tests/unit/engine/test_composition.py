"""The composition: the store backend chosen by name in the settings, imported when chosen."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gristmill.app.service import Service, memory_store, store_factory
from gristmill.authoring.registry import Registry
from gristmill.cli.main import main
from gristmill.errors import ConfigurationError
from gristmill.executors.local import Supervisor
from gristmill.settings import Settings
from gristmill.store.base import Store
from gristmill.store.memory import MemoryStore

made: list[Settings] = []


def my_store(settings: Settings, *, alias: str, migrate: bool | None) -> tuple[Settings, Store]:
    """A backend of the user's, named by ``module:function``."""
    made.append(settings)
    return settings, MemoryStore()


def settings(tmp_path: Path, store: str | None = None) -> Settings:
    env = {"GRISTMILL_STORE": store} if store is not None else {}
    return Settings.from_env(env, data_dir=tmp_path)


def test_the_store_setting_is_read_and_passed_on(tmp_path: Path) -> None:
    assert settings(tmp_path).store == "sql"
    chosen = settings(tmp_path, "memory")
    assert chosen.store == "memory"
    assert chosen.to_env()["GRISTMILL_STORE"] == "memory"


def test_the_built_in_stores_are_chosen_by_name() -> None:
    sql = store_factory("sql")  # imported, not called: Django is imported only when it is
    assert (sql.__module__, sql.__name__) == ("gristmill.server.conf", "sql_store")
    assert store_factory("memory") is memory_store


def test_a_service_on_the_memory_store_needs_no_database(tmp_path: Path) -> None:
    service = Service.from_settings(settings(tmp_path, "memory"), registry=Registry())
    assert isinstance(service.store, MemoryStore)
    assert service.storage.root == tmp_path


def test_a_store_of_your_own_is_named_by_module_and_function(tmp_path: Path) -> None:
    made.clear()
    chosen = settings(tmp_path, f"{__name__}:my_store")
    service = Service.from_settings(chosen, registry=Registry())
    assert isinstance(service.store, MemoryStore)
    assert made == [chosen]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("mongo", "GRISTMILL_STORE must be 'sql', 'memory' or 'module:function', not 'mongo'"),
        (
            "no_such_module:open",
            "GRISTMILL_STORE 'no_such_module:open': cannot import 'no_such_module'",
        ),
        (
            "gristmill.store.memory:nothing",
            "GRISTMILL_STORE 'gristmill.store.memory:nothing': module 'gristmill.store.memory' "
            "has no function 'nothing'",
        ),
    ],
)
def test_a_store_that_cannot_be_found_is_named(name: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Service.from_settings(settings(tmp_path, name), registry=Registry())
    assert str(caught.value) == message


def test_a_store_missing_an_optional_dependency_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "tests.unit.engine.psycopg_store", raising=False)
    name = "tests.unit.engine.psycopg_store:open_store"
    with pytest.raises(ConfigurationError) as caught:
        store_factory(name)
    assert str(caught.value) == (
        f"the store {name!r} needs the postgres extra: pip install 'gristmill[postgres]'"
    )


def test_worker_processes_refuse_a_store_they_cannot_share(tmp_path: Path) -> None:
    service = Service.in_memory([], tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        Supervisor(lambda: service, service, workers=1)
    assert str(caught.value) == (
        "local worker processes cannot share the 'memory' store: it keeps runs in one process; "
        "set GRISTMILL_STORE=sql"
    )


def test_the_server_refuses_a_store_its_workers_cannot_share(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path)], env={"GRISTMILL_STORE": "memory"}
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: gristmill serve's web server and workers cannot share the 'memory' store: it "
        "keeps runs in one process; set GRISTMILL_STORE=sql\n"
    )


def test_gristmill_run_on_the_memory_store_writes_no_database(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("one two two", encoding="utf-8")
    data = tmp_path / "data"
    result = CliRunner().invoke(
        main,
        ["run", "wordcount", str(text), "--data-dir", str(data)],
        env={"GRISTMILL_STORE": "memory", "GRISTMILL_PIPELINES": ""},
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"^run [0-9a-f-]{36} succeeded$", result.stderr, flags=re.MULTILINE)
    assert [path.name for path in data.iterdir()] == ["runs"]

"""Engine unit tests: the runner, planner, watchdog and executors on a MemoryStore, with no
database and no Django (``test_without_django.py`` checks that)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gristmill.pipelines import Pipeline
from gristmill.service import Service

MakeService = Callable[..., Service]


@pytest.fixture
def make_service(tmp_path: Path) -> MakeService:
    """``make_service(*pipelines, **settings)``: a service on a new MemoryStore offering
    ``pipelines``, its files under the test's temporary directory."""

    def make(*pipelines: Pipeline, **settings: Any) -> Service:
        return Service.in_memory(pipelines, tmp_path / "data", **settings)

    return make

"""A pipeline on a queue of its own, for the tests of ``gristmill worker --queue``."""

from __future__ import annotations

from gristmill import Pipeline
from tests.integration.pipelines import OPTIONAL, Params, one

heavy = Pipeline("heavy", [one], params=Params, inputs=OPTIONAL, queue="heavy")
urgent = Pipeline("urgent", [one], params=Params, inputs=OPTIONAL, queue="heavy", priority=10)
"""On the same queue as ``heavy``, ahead of it: workers take its runs first."""

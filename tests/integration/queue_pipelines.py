"""A pipeline on a queue of its own, for the tests of ``gristmill worker --queue``."""

from __future__ import annotations

from gristmill import Pipeline
from tests.integration.pipelines import OPTIONAL, Params, one

heavy = Pipeline("heavy", [one], params=Params, inputs=OPTIONAL, queue="heavy")

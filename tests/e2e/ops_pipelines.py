"""A pipeline on a queue that ``gristmill serve`` in the operations tests leaves to a separate
``gristmill worker``: its step fails with an unexpected error, which the worker logs."""

from __future__ import annotations

from gristmill import Pipeline
from tests.integration.pipelines import OPTIONAL, broken

broken_elsewhere = Pipeline("broken-elsewhere", [broken], inputs=OPTIONAL, queue="elsewhere")

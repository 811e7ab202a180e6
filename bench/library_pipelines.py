"""The pipeline bench/library.py runs: the items of a JSON file checked against a schema.

Loaded by file path (``GRISTMILL_PIPELINES=/abs/path/bench/library_pipelines.py``), as users do.
"""

from __future__ import annotations

from library_data import SCHEMA

from gristmill import Inputs, Pipeline
from gristmill.library import ValidateSchema

library_validate = Pipeline(
    "library-validate",
    [ValidateSchema(SCHEMA)],
    inputs=Inputs(kinds=["file"], max_size=1 << 30),
)

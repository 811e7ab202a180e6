"""The data checker demo (CoVE-class), built from ``gristmill.library``: JSON, JSON Lines, CSV
or XLSX checked against a bundled JSON Schema (or one sent as a second input), with sample
mode, grouped errors, additional fields, statistics, the data converted to the other format,
and a results page of its own (``templates/demo/checker.html``). See docs/demos/checker.md."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from gristmill import Inputs, Pipeline
from gristmill.library import (
    DetectFormat,
    FieldStatistics,
    JsonToSpreadsheet,
    Sample,
    SpreadsheetToJson,
    ValidateSchema,
)

SCHEMAS = {
    name: Path(__file__).with_name("schemas") / f"{name}.json"
    for name in ("grants", "people", "products")
}


class CheckerParams(BaseModel):
    """Parameters of the data checker demo."""

    model_config = {"extra": "forbid"}

    schema_name: Literal["grants", "people", "products"] = Field(
        "grants",
        description="The bundled schema to check against (a schema sent as a second file wins)",
    )
    sample: int = Field(
        0, ge=0, le=1_000_000, description="Check only this many items, chosen at random (0: all)"
    )


# Later steps read the sample if there is one, else the data converted from a spreadsheet,
# else the input itself.
DATA = ("Sample", "SpreadsheetToJson")

checker = Pipeline(
    "data-checker",
    [
        DetectFormat(accept=("json", "jsonl", "csv", "xlsx")),
        SpreadsheetToJson(),
        Sample(param="sample", mode="random", seed=1, source=("SpreadsheetToJson",)),
        ValidateSchema(choices=SCHEMAS, param="schema_name", schema_input=1, source=DATA),
        FieldStatistics(choices=SCHEMAS, param="schema_name", schema_input=1, source=DATA),
        JsonToSpreadsheet(),
    ],
    title="Data checker",
    description=(
        "Checks JSON, JSON Lines, CSV or XLSX data against a JSON Schema: errors grouped with "
        "examples, fields the schema does not describe, field statistics, and the data "
        "converted to the other format. Send a JSON Schema as a second file to use your own."
    ),
    inputs=Inputs(
        kinds=["file", "url", "json", "text"],
        extensions=["json", "jsonl", "csv", "xlsx"],
        max_count=2,
        max_size=512 * 1024**2,
    ),
    params=CheckerParams,
    page_template="demo/checker.html",
)

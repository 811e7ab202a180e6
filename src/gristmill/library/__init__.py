"""gristmill's library of common tasks: a line each in a pipeline.

Each task streams its data (memory stays bounded whatever the file's size), reports its stages
and progress, and has a readable default rendering. See docs/library.md.

What they need (openpyxl, defusedxml, jsonschema, jsonschema-rs, ijson) comes with gristmill.
"""

from gristmill.library.convert import JsonToSpreadsheet, SpreadsheetToJson
from gristmill.library.fields import FieldStatistics
from gristmill.library.formats import DetectFormat
from gristmill.library.python import EvaluatePython
from gristmill.library.sampling import Sample
from gristmill.library.schemas import ValidateSchema
from gristmill.library.unzip import SafeUnzip

__all__ = [
    "DetectFormat",
    "EvaluatePython",
    "FieldStatistics",
    "JsonToSpreadsheet",
    "SafeUnzip",
    "Sample",
    "SpreadsheetToJson",
    "ValidateSchema",
]

"""gristmill: a server for data-processing pipelines.

This module is the authoring API: what a pipeline author imports. Everything else in the package
may change between releases.
"""

from gristmill.authoring import items
from gristmill.authoring.commands import Command
from gristmill.authoring.context import Ancestor, InputFile, OutputFile, RunContext
from gristmill.authoring.inputs import InputKind, Inputs
from gristmill.authoring.maps import FunctionMapTask, MapTask, Reservoir, map_step
from gristmill.authoring.pipelines import Access, Pipeline
from gristmill.authoring.references import Reference, reference
from gristmill.authoring.tasks import FunctionTask, PreviousResult, Task, task
from gristmill.errors import (
    CancelledError,
    DefinitionError,
    GristmillError,
    StepTimeoutError,
    SubmissionError,
    TaskError,
)
from gristmill.states import RunState, StepState

__all__ = [
    "Access",
    "Ancestor",
    "CancelledError",
    "Command",
    "DefinitionError",
    "FunctionMapTask",
    "FunctionTask",
    "GristmillError",
    "InputFile",
    "InputKind",
    "Inputs",
    "MapTask",
    "OutputFile",
    "Pipeline",
    "PreviousResult",
    "Reference",
    "Reservoir",
    "RunContext",
    "RunState",
    "StepState",
    "StepTimeoutError",
    "SubmissionError",
    "Task",
    "TaskError",
    "items",
    "map_step",
    "reference",
    "task",
]

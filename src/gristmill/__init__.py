"""gristmill: a server for data-processing pipelines.

This module is the authoring API: what a pipeline author imports. Everything else in the package
may change between releases.
"""

from gristmill.authoring.commands import Command
from gristmill.authoring.context import Ancestor, InputFile, OutputFile, RunContext
from gristmill.authoring.inputs import InputKind, Inputs
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
    "FunctionTask",
    "GristmillError",
    "InputFile",
    "InputKind",
    "Inputs",
    "OutputFile",
    "Pipeline",
    "PreviousResult",
    "Reference",
    "RunContext",
    "RunState",
    "StepState",
    "StepTimeoutError",
    "SubmissionError",
    "Task",
    "TaskError",
    "reference",
    "task",
]

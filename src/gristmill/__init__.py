"""gristmill: a server for data-processing pipelines.

This module is the authoring API: what a pipeline author imports. Everything else in the package
may change between releases.
"""

from gristmill.commands import Command
from gristmill.context import InputFile, OutputFile, RunContext
from gristmill.errors import (
    CancelledError,
    DefinitionError,
    GristmillError,
    StepTimeoutError,
    SubmissionError,
    TaskError,
)
from gristmill.inputs import InputKind, Inputs
from gristmill.pipelines import Access, Pipeline
from gristmill.states import RunState, StepState
from gristmill.tasks import FunctionTask, PreviousResult, Task, task

__all__ = [
    "Access",
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
    "RunContext",
    "RunState",
    "StepState",
    "StepTimeoutError",
    "SubmissionError",
    "Task",
    "TaskError",
    "task",
]

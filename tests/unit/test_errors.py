"""The exception tree: drawn in ``errors.py``'s docstring, free of HTTP, one internal-error type."""

from __future__ import annotations

import ast
import builtins
import logging
import re
from pathlib import Path

import pytest

from gristmill import errors
from gristmill.authoring import jsonload
from gristmill.errors import (
    ConflictError,
    GristmillError,
    InternalErrorRef,
    PipelineNotFoundError,
    SubmissionError,
    SubmissionTooLargeError,
)
from gristmill.states import RunState

PACKAGE = Path(errors.__file__).parent
CORE = [PACKAGE / "errors.py"] + [
    path
    for folder in ("authoring", "storage", "store", "engine", "app", "executors")
    for path in sorted((PACKAGE / folder).rglob("*.py"))
]
_DRAWN = re.compile(r"^(?P<indent>[│ ]*)[├└]── (?P<name>\w+)(?: \((?P<also>[\w, ]+)\))?")


def tree() -> list[type[GristmillError]]:
    """Every class of the tree that gristmill defines (tests may add their own)."""
    found: list[type[GristmillError]] = [GristmillError]
    for kind in found:
        found.extend(sub for sub in kind.__subclasses__() if sub not in found)
    return [kind for kind in found if kind.__module__.split(".")[0] == "gristmill"]


def drawing() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The docstring's tree: each class's drawn parent and the classes named beside it."""
    drawn: dict[str, tuple[str, tuple[str, ...]]] = {}
    parents = ["GristmillError"]
    for line in (errors.__doc__ or "").splitlines():
        match = _DRAWN.match(line.strip("\n")[4:])
        if match is None:
            continue
        depth = len(match["indent"]) // 4
        also = tuple(name.strip() for name in (match["also"] or "").split(",") if name)
        drawn[match["name"]] = (parents[depth], also)
        del parents[depth + 1 :]
        parents.append(match["name"])
    return drawn


def test_the_docstring_draws_every_class_of_the_tree_under_its_parent() -> None:
    actual = {
        kind.__name__: (kind.__bases__[0].__name__, tuple(b.__name__ for b in kind.__bases__[1:]))
        for kind in tree()
        if kind is not GristmillError
    }
    assert drawing() == actual


def test_every_error_of_the_tree_is_defined_in_errors_py() -> None:
    assert {kind.__module__ for kind in tree()} == {"gristmill.errors"}
    defined = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, BaseException)
    ]
    assert sorted(kind.__name__ for kind in defined) == sorted(kind.__name__ for kind in tree())


def test_the_json_reader_raises_the_trees_json_error() -> None:
    assert jsonload.JsonError is errors.JsonError
    with pytest.raises(errors.JsonError) as refused:
        jsonload.loads("{", name="body")
    assert isinstance(refused.value, errors.TaskError)


def test_leaves_that_name_a_builtin_are_that_builtin() -> None:
    assert issubclass(errors.TooLargeError, ValueError)
    assert issubclass(errors.PermissionDeniedError, PermissionError)
    assert issubclass(PipelineNotFoundError, LookupError)
    for name, (_, also) in drawing().items():
        for other in also:
            expected = getattr(builtins, other, None) or getattr(errors, other)
            assert issubclass(getattr(errors, name), expected), (name, other)


def test_no_error_of_the_core_carries_an_http_status() -> None:
    for kind in tree():
        assert not {"status", "status_code"} & set(vars(kind)), kind
    assert not hasattr(SubmissionError({"inputs": ["x"]}), "status")


def test_the_core_passes_no_http_status_anywhere() -> None:
    """``status=413`` and the like belong to the server's one map, never to the core."""
    for path in CORE:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.keyword) and node.arg in ("status", "status_code"):
                value = node.value
                is_http = isinstance(value, ast.Constant) and isinstance(value.value, int)
                assert not is_http, f"{path.name}:{node.value.lineno}"


def test_a_refinement_of_a_refusal_keeps_its_messages_by_field() -> None:
    too_large = SubmissionTooLargeError({"inputs": ["big.csv is larger than 1 MB"]})
    unknown = PipelineNotFoundError({"pipeline": ["no pipeline named 'x'"]})
    assert too_large.errors == {"inputs": ["big.csv is larger than 1 MB"]}
    assert str(unknown) == "pipeline: no pipeline named 'x'"
    assert isinstance(unknown, errors.NotFoundError) and isinstance(unknown, SubmissionError)


def test_a_conflict_carries_the_state_that_refused_the_action() -> None:
    conflict = ConflictError("the run is still running; cancel it first", state=RunState.RUNNING)
    assert (str(conflict), conflict.state) == (
        "the run is still running; cancel it first",
        RunState.RUNNING,
    )


def test_an_internal_error_is_logged_with_its_traceback_under_the_reference_it_shows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("gristmill.tests")
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError as error:
        with caplog.at_level(logging.ERROR, logger="gristmill.tests"):
            internal = InternalErrorRef.log(error, "step one of run r1", logger)
    (record,) = caplog.records
    assert record.getMessage() == f"step one of run r1 failed (reference {internal.reference})"
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert re.fullmatch(r"[0-9a-f]{12}", internal.reference)
    assert internal.message == f"internal error, reference {internal.reference}"
    assert internal.shown() == {"error": internal.message}
    assert internal.traceback.startswith("Traceback (most recent call last):")
    assert internal.traceback.endswith("ZeroDivisionError: division by zero\n")


def test_each_internal_error_gets_a_reference_of_its_own() -> None:
    logger = logging.getLogger("gristmill.tests")
    first = InternalErrorRef.log(RuntimeError("a"), "here", logger)
    second = InternalErrorRef.log(RuntimeError("a"), "here", logger)
    assert first.reference != second.reference

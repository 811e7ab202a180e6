"""What every library task shares: where it reads from, a version that follows its
configuration, and a loop over items that reports progress and honours cancellation."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Self

from gristmill.authoring.context import RunContext
from gristmill.authoring.tasks import Task
from gristmill.errors import DefinitionError, TaskError
from gristmill.library.reading import DataFile, ItemReader, data_file

LIBRARY_VERSION = "1"
"""Bumped when a library task's results would change for the same data and configuration."""

_REPORT_EVERY = 1000


class LibraryTask(Task):
    """Base of the library's tasks.

    ``source`` names the earlier steps whose output file the task reads, tried in order (a
    step that made no file is passed over); with none, or none that made a file, it reads the
    run's first input. ``items`` is the dotted path of the array of items inside a JSON
    document (``"releases"``); by default the items are the top-level array's elements.

    ``network=`` overrides the task's default (``False`` for the tasks that run a third-party
    checker over the data, :class:`ValidateSchema` and :class:`FieldStatistics`: see
    docs/library.md). The task's configuration counts in its fingerprint, through
    :attr:`version`.
    """

    uses: Sequence[str] | None = ()

    given: Mapping[str, Any] = {}
    """The options the task was made with, by name, as given (what a YAML pipeline writes);
    read it, never change it."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        task = super().__new__(cls)
        task.given = _given_options(cls, args, kwargs)
        return task

    def __init__(
        self,
        *,
        source: str | Sequence[str] = (),
        items: str | None = None,
        name: str | None = None,
        title: str | None = None,
        network: bool | None = None,
        **config: Any,
    ):
        self.sources = (source,) if isinstance(source, str) else tuple(source)
        if not all(isinstance(step, str) and step for step in self.sources):
            raise DefinitionError("source must name earlier steps", step=name or "")
        self.items = items
        if name is not None:
            self.name = name
        if title is not None:
            self.title = title
        if network is not None:
            self.network = network
        self.needs = self.sources
        described = {"source": self.sources, "items": items, **config}
        digest = hashlib.sha256(
            json.dumps(described, sort_keys=True, default=str).encode()
        ).hexdigest()
        self.version = f"{LIBRARY_VERSION}+{digest[:12]}"

    def data(self, run: RunContext) -> DataFile:
        """The file this task reads for ``run``."""
        return data_file(run, self.sources)

    def each_item(self, run: RunContext, reader: ItemReader) -> Iterator[tuple[int, Any]]:
        """(index, item) for every item ``reader`` yields, reporting progress and checking for
        cancellation every thousand items and at the end. Use it inside :meth:`nesting`."""
        reader.index = -1
        for index, item in enumerate(reader):
            reader.index = index
            if index % _REPORT_EVERY == 0:
                run.progress(*reader.progress())
                run.check_cancelled()
            yield index, item
        done, total = reader.progress()
        run.progress(total or done, total)

    @contextlib.contextmanager
    def nesting(self, reader: ItemReader) -> Iterator[None]:
        """Turn an item too deeply nested for the work done on it (Python's recursion limit)
        into a :class:`TaskError` naming the item."""
        try:
            yield
        except RecursionError:
            raise TaskError(
                f"{reader.file.name}: item {reader.index} is nested too deeply to process"
            ) from None


def _given_options(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    signature = inspect.signature(vars(cls).get("__init__") or cls.__init__)  # type: ignore[misc]
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError:
        return dict(kwargs)  # __init__ will say what is wrong
    given: dict[str, Any] = {}
    for name, value in list(bound.arguments.items())[1:]:
        if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
            given.update(value)
        else:
            given[name] = value
    return given

"""Map steps: a step over the items of a dataset, cut into batches that every worker shares.

A map step says how to read its items (:mod:`gristmill.authoring.items`) and what to do with
one item: ``check(item, run)`` returns nothing, a finding (a dict with a ``"kind"`` string and
any JSON fields) or a list of findings. The engine stores every finding, and counts them by
kind. A reduce step is an ordinary step placed after it, which reads ``run.findings(step)``
and ``run.map_summary(step)``, and keeps bounded examples with :class:`Reservoir`.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from gristmill.authoring.context import RunContext
from gristmill.authoring.fingerprints import code_digest, normalised_source
from gristmill.authoring.items import ItemReader, as_reader
from gristmill.authoring.tasks import Task
from gristmill.errors import DefinitionError

ON_FAILURE = ("fail", "continue")

DEFAULT_BATCH_SIZE = 1000


class MapTask(Task):
    """A map step. Subclass it and set :attr:`items` (a reader) or override :meth:`read`, and
    override :meth:`check`; or use :func:`map_step` on a function."""

    items: ItemReader | None = None
    """How the step reads its items."""
    batch_size: int = DEFAULT_BATCH_SIZE
    """Items per batch (each batch is one unit of work any worker may take)."""
    on_failure: str = "fail"
    """What an item that raises means: ``"fail"`` fails the run (naming the step, the item and
    the error) once every batch has ended; ``"continue"`` lists the item as failed and goes
    on."""

    def reader(self) -> ItemReader:
        """The reader of the step's items."""
        if self.items is None:
            raise DefinitionError("a map step needs items=<a reader>", step=self.step_name)
        return self.items

    def check(self, item: Any, run: RunContext) -> Any:
        """Check one item; return ``None``, a finding (a dict with ``"kind"``) or a list of
        findings. Raise to fail the item (see :attr:`on_failure`)."""
        raise NotImplementedError(f"{self.identity} must implement check()")

    def check_code(self) -> str:
        """The code whose changes make the step's results stale."""
        return normalised_source(type(self))

    def code_fingerprint(self) -> str:
        digest = Task._code_cache.get(("map", type(self)))
        if digest is None:
            digest = code_digest(
                self.check_code(), self.reader().description, f"batch_size={self.batch_size}"
            )
            Task._code_cache[("map", type(self))] = digest
        return digest

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> Any:
        raise TypeError("a map step is run by the engine in batches, not by process()")

    def check_definition(self) -> None:
        super().check_definition()
        self.reader()
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise DefinitionError("batch_size must be a positive integer", step=self.step_name)
        if self.on_failure not in ON_FAILURE:
            raise DefinitionError('on_failure must be "fail" or "continue"', step=self.step_name)
        if self.network is False:
            raise DefinitionError(
                "network=False is not available on map steps yet: check the items in a step "
                "of its own with network=False, or leave the map step its network",
                step=self.step_name,
            )


class FunctionMapTask(MapTask):
    """A map step made from a function ``check(item, run)`` with :func:`map_step`."""

    def __init__(
        self,
        function: Callable[[Any, RunContext], Any],
        *,
        items: ItemReader | Callable[[RunContext], Any],
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_failure: str = "fail",
        name: str | None = None,
        title: str | None = None,
        version: str | None = None,
        needs: list[str] | None = None,
        uses: list[str] | None = None,
        timeout: float | None = None,
    ):
        self.function = function
        self.items = as_reader(items)
        self.batch_size = batch_size
        self.on_failure = on_failure
        self.name = name or function.__name__
        self.title, self.version, self.needs, self.uses = title, version, needs, uses
        self.timeout = timeout
        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            with contextlib.suppress(AttributeError):
                setattr(self, attribute, getattr(function, attribute))
        self.__wrapped__ = function
        self.check_definition()

    @property
    def identity(self) -> str:
        return f"{self.function.__module__}.{self.function.__qualname__}"

    def check_code(self) -> str:
        return normalised_source(self.function)

    def code_fingerprint(self) -> str:
        key = ("map", self.function, self.reader().description, self.batch_size)
        digest = Task._code_cache.get(key)
        if digest is None:
            digest = code_digest(
                self.check_code(), self.reader().description, f"batch_size={self.batch_size}"
            )
            Task._code_cache[key] = digest
        return digest

    def check(self, item: Any, run: RunContext) -> Any:
        return self.function(item, run)

    def __call__(self, item: Any, run: RunContext) -> Any:
        return self.function(item, run)


def map_step(
    *,
    items: ItemReader | Callable[[RunContext], Any],
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_failure: str = "fail",
    name: str | None = None,
    title: str | None = None,
    version: str | None = None,
    needs: list[str] | None = None,
    uses: list[str] | None = None,
    timeout: float | None = None,
) -> Callable[[Callable[[Any, RunContext], Any]], FunctionMapTask]:
    """Make a map step from ``check(item, run)``: ``items`` reads the items (a reader of
    :mod:`gristmill.items` or a generator function ``(run) -> Iterator[item]``),
    ``batch_size`` items go to each batch, and ``on_failure`` (``"fail"`` or ``"continue"``)
    says what an item that raises means. ``timeout`` limits each batch."""

    def decorate(function: Callable[[Any, RunContext], Any]) -> FunctionMapTask:
        return FunctionMapTask(
            function,
            items=items,
            batch_size=batch_size,
            on_failure=on_failure,
            name=name,
            title=title,
            version=version,
            needs=needs,
            uses=uses,
            timeout=timeout,
        )

    return decorate


class Reservoir:
    """Bounded random examples per key (reservoir sampling): at most ``k`` of each key's values,
    each value offered having the same chance to be kept. With a ``seed`` the same values
    offered in the same order give the same examples."""

    def __init__(self, k: int = 5, seed: int | str | None = None):
        if k < 0:
            raise ValueError("k cannot be negative")
        self.k = k
        self._random = random.Random(seed)
        self._kept: dict[Hashable, list[Any]] = {}
        self._seen: dict[Hashable, int] = {}

    def add(self, key: Hashable, value: Any) -> None:
        """Offer ``value`` as an example of ``key``."""
        seen = self._seen.get(key, 0) + 1
        self._seen[key] = seen
        kept = self._kept.setdefault(key, [])
        if len(kept) < self.k:
            kept.append(value)
        else:
            slot = self._random.randrange(seen)
            if slot < self.k:
                kept[slot] = value

    def count(self, key: Hashable) -> int:
        """How many values of ``key`` were offered."""
        return self._seen.get(key, 0)

    def examples(self, key: Hashable) -> list[Any]:
        """The examples kept of ``key`` (at most ``k``)."""
        return list(self._kept.get(key, ()))

    def as_dict(self) -> dict[Hashable, list[Any]]:
        """Every key's examples, keys in the order first offered."""
        return {key: list(kept) for key, kept in self._kept.items()}

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
from gristmill.errors import DefinitionError, TaskError

ON_FAILURE = ("fail", "continue")

DEFAULT_BATCH_SIZE = 1000

DEFAULT_PAIR_PARTITIONS = 64
"""Partitions a paired map step's items are spread over (see ``pair_with_ancestor``)."""

PairKey = str | Callable[[Any], Any]
"""How a paired map step finds an item's key: a field name or a function of the item."""


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
    pair_with_ancestor: PairKey | None = None
    """Pair each item with the item of the run's ancestor that has the same key (a field name
    or a function of the item): :meth:`check_pair` then gets both, either ``None`` for an
    added or removed item."""
    pair_partitions: int = DEFAULT_PAIR_PARTITIONS
    """How many partitions (files) the items of both runs are spread over by key when paired;
    one partition is held in memory at a time."""

    def reader(self) -> ItemReader:
        """The reader of the step's items."""
        if self.items is None:
            raise DefinitionError("a map step needs items=<a reader>", step=self.step_name)
        return self.items

    def check(self, item: Any, run: RunContext) -> Any:
        """Check one item; return ``None``, a finding (a dict with ``"kind"``) or a list of
        findings. Raise to fail the item (see :attr:`on_failure`). A paired step's items are
        ``[current, ancestor]`` pairs, handed to :meth:`check_pair`."""
        if self.pair_with_ancestor is not None:
            current, earlier = item
            return self.check_pair(current, earlier, run)
        raise NotImplementedError(f"{self.identity} must implement check()")

    def check_pair(self, current: Any, ancestor: Any, run: RunContext) -> Any:
        """Check one item of a paired step (:attr:`pair_with_ancestor`) with the ancestor's
        item of the same key: ``current`` is ``None`` for an item the ancestor had and this run
        has not, ``ancestor`` is ``None`` for an item that is new (or when there is no
        ancestor). Returns what :meth:`check` returns."""
        raise NotImplementedError(f"{self.identity} must implement check_pair()")

    def pair_key(self, item: Any) -> Any:
        """The key an item is paired by; a :class:`TaskError` if the item has none."""
        key = self.pair_with_ancestor
        if callable(key):
            return key(item)
        if not isinstance(item, dict) or key not in item:
            raise TaskError(f"an item has no {key!r} to pair it with the ancestor's by")
        return item[key]

    def pairing_description(self) -> str:
        """What the pairing counts for the fingerprint ("" when the step is not paired)."""
        key = self.pair_with_ancestor
        if key is None:
            return ""
        said = normalised_source(key) if callable(key) else repr(key)
        return f"pair_with_ancestor={said}"

    def check_code(self) -> str:
        """The code whose changes make the step's results stale."""
        return normalised_source(type(self))

    def code_fingerprint(self) -> str:
        digest = Task._code_cache.get(("map", type(self)))
        if digest is None:
            digest = code_digest(
                self.check_code(),
                self.reader().description,
                f"batch_size={self.batch_size}",
                *filter(None, [self.pairing_description()]),
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
        key = self.pair_with_ancestor
        if key is not None and not callable(key) and not (isinstance(key, str) and key):
            raise DefinitionError(
                "pair_with_ancestor must be a field name or a function of the item",
                step=self.step_name,
            )
        if not isinstance(self.pair_partitions, int) or self.pair_partitions < 1:
            raise DefinitionError("pair_partitions must be a positive integer", step=self.step_name)


class FunctionMapTask(MapTask):
    """A map step made from a function ``check(item, run)`` with :func:`map_step` (or
    ``check(current, ancestor, run)`` when paired)."""

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        items: ItemReader | Callable[[RunContext], Any],
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_failure: str = "fail",
        pair_with_ancestor: PairKey | None = None,
        pair_partitions: int = DEFAULT_PAIR_PARTITIONS,
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
        self.pair_with_ancestor = pair_with_ancestor
        self.pair_partitions = pair_partitions
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
        pairing = self.pairing_description()
        key = ("map", self.function, self.reader().description, self.batch_size, pairing)
        digest = Task._code_cache.get(key)
        if digest is None:
            digest = code_digest(
                self.check_code(),
                self.reader().description,
                f"batch_size={self.batch_size}",
                *filter(None, [pairing]),
            )
            Task._code_cache[key] = digest
        return digest

    def check(self, item: Any, run: RunContext) -> Any:
        if self.pair_with_ancestor is not None:
            current, earlier = item
            return self.function(current, earlier, run)
        return self.function(item, run)

    def check_pair(self, current: Any, ancestor: Any, run: RunContext) -> Any:
        return self.function(current, ancestor, run)

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)


def map_step(
    *,
    items: ItemReader | Callable[[RunContext], Any],
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_failure: str = "fail",
    pair_with_ancestor: PairKey | None = None,
    pair_partitions: int = DEFAULT_PAIR_PARTITIONS,
    name: str | None = None,
    title: str | None = None,
    version: str | None = None,
    needs: list[str] | None = None,
    uses: list[str] | None = None,
    timeout: float | None = None,
) -> Callable[[Callable[..., Any]], FunctionMapTask]:
    """Make a map step from ``check(item, run)``: ``items`` reads the items (a reader of
    :mod:`gristmill.items` or a generator function ``(run) -> Iterator[item]``),
    ``batch_size`` items go to each batch, and ``on_failure`` (``"fail"`` or ``"continue"``)
    says what an item that raises means. ``timeout`` limits each batch.

    With ``pair_with_ancestor`` (a field name or a function of the item) the function is
    ``check(current, ancestor, run)``: each item of this run with the item of the run's
    ancestor that has the same key, ``None`` on the side that lacks it."""

    def decorate(function: Callable[..., Any]) -> FunctionMapTask:
        return FunctionMapTask(
            function,
            items=items,
            batch_size=batch_size,
            on_failure=on_failure,
            pair_with_ancestor=pair_with_ancestor,
            pair_partitions=pair_partitions,
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

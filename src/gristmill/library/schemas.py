"""JSON Schema validation, item by item, with errors grouped by kind.

:class:`ValidateSchema` checks every item of a data file against a schema. Each error carries
the item's index and the JSON path of the value at fault (``$.parties[2].name``); errors are
grouped by kind, the validator keyword and the path with array indexes as ``[*]``
(``type`` at ``$.parties[*].name``), with a count and the first few examples. Every error is
also written to the output ``errors.jsonl``, one JSON object a line.

The validator is ``jsonschema-rs`` when it is installed, else ``jsonschema``: both report every
error of an item with its path; ``jsonschema-rs`` is several times faster (figures in
bench/README.md). ``fastjsonschema`` is faster still on valid data, but stops at an item's first
error, so it is not used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from gristmill.authoring.context import RunContext
from gristmill.authoring.jsonload import load
from gristmill.authoring.tasks import installed_version
from gristmill.errors import DefinitionError, TaskError
from gristmill.library.base import LibraryTask
from gristmill.library.reading import ItemReader

BACKENDS = ("jsonschema-rs", "jsonschema")
"""The validators :class:`ValidateSchema` can use, in order of preference."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Problem(NamedTuple):
    """One error of one item."""

    keyword: str
    """The schema keyword that failed (``type``, ``required``, ...)."""
    path: tuple[str | int, ...]
    """Where in the item: keys and array indexes."""
    message: str


def json_path(path: Sequence[str | int], *, pattern: bool = False) -> str:
    """``path`` as a JSON path (``$.a[0].b``); ``pattern`` writes indexes as ``[*]``."""
    parts = ["$"]
    for step in path:
        if isinstance(step, int):
            parts.append("[*]" if pattern else f"[{step}]")
        elif _IDENTIFIER.fullmatch(step):
            parts.append(f".{step}")
        else:
            parts.append(f"[{json.dumps(step, ensure_ascii=False)}]")
    return "".join(parts)


def load_schema(schema: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """The schema as a dict (read from a file if given a path), checked against its
    metaschema; :class:`DefinitionError` if it is not a valid schema."""
    import jsonschema

    if isinstance(schema, str | Path):
        try:
            loaded = load(Path(schema))
        except (OSError, TaskError) as error:
            raise DefinitionError(f"the schema cannot be read: {error}") from None
    else:
        loaded = dict(schema)
    if not isinstance(loaded, dict):
        raise DefinitionError("a JSON Schema must be a JSON object")
    try:
        jsonschema.validators.validator_for(loaded).check_schema(loaded)
    except jsonschema.SchemaError as error:
        raise DefinitionError(f"the schema is not a valid JSON Schema: {error.message}") from None
    outside = remote_references(loaded)
    if outside:
        raise DefinitionError(
            f"the schema refers to {outside[0]!r}, which is not inside it; remote references "
            "are never fetched, so put what it names under $defs"
        )
    return loaded


def remote_references(schema: Any) -> list[str]:
    """The ``$ref`` values of ``schema`` that point outside it: neither ``#...`` nor the
    ``$id`` of one of its parts."""
    ids: set[str] = set()
    refs: list[str] = []
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("$id"), str):
                ids.add(node["$id"].split("#", 1)[0])
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return [ref for ref in refs if not ref.startswith("#") and ref.split("#", 1)[0] not in ids]


def _refuse_retrieval(uri: str) -> Any:
    raise ValueError(f"remote references are never fetched: {uri}")


class Checker:
    """One schema, compiled for one validator library."""

    def __init__(
        self, schema: Mapping[str, Any], backend: str | None = None, *, formats: bool = False
    ):
        chosen = backend or next(b for b in BACKENDS if installed_version(b) or b == "jsonschema")
        if chosen not in BACKENDS:
            raise DefinitionError(f"validator {chosen!r} is not one of: {', '.join(BACKENDS)}")
        version = installed_version(chosen)
        if version is None:
            raise DefinitionError(f"validator {chosen!r} is not installed (pip install {chosen})")
        self.name = f"{chosen} {version}"
        if chosen == "jsonschema-rs":
            import jsonschema_rs

            self._rs = jsonschema_rs.validator_for(
                dict(schema), validate_formats=formats, retriever=_refuse_retrieval
            )
            self.is_valid = self._rs.is_valid
            self.problems = self._rs_problems
        else:
            import jsonschema

            cls = jsonschema.validators.validator_for(schema)
            self._py = cls(schema, format_checker=cls.FORMAT_CHECKER if formats else None)
            self.is_valid = self._py.is_valid
            self.problems = self._py_problems

    def _rs_problems(self, item: Any) -> Iterator[Problem]:
        for error in self._rs.iter_errors(item):
            keyword = next((str(s) for s in reversed(error.schema_path) if isinstance(s, str)), "")
            yield Problem(keyword, tuple(error.instance_path), error.message)

    def _py_problems(self, item: Any) -> Iterator[Problem]:
        for error in self._py.iter_errors(item):
            yield Problem(str(error.validator), tuple(error.absolute_path), error.message)


class Groups:
    """Errors grouped by (keyword, path pattern): counts and the first ``examples`` of each.

    At most ``limit`` groups are kept; errors of further kinds are counted in ``others``.
    """

    def __init__(self, examples: int = 5, limit: int = 500):
        self.examples = examples
        self.limit = limit
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}
        self.others = 0

    def add(self, index: int, problem: Problem) -> None:
        """Count ``problem`` of item ``index``."""
        key = (problem.keyword, json_path(problem.path, pattern=True))
        group = self.groups.get(key)
        if group is None:
            if len(self.groups) >= self.limit:
                self.others += 1
                return
            group = self.groups[key] = {
                "keyword": key[0],
                "path": key[1],
                "count": 0,
                "examples": [],
            }
        group["count"] += 1
        if len(group["examples"]) < self.examples:
            group["examples"].append(
                {"item": index, "path": json_path(problem.path), "message": problem.message}
            )

    def sorted(self) -> list[dict[str, Any]]:
        """The groups, the most frequent first."""
        return sorted(self.groups.values(), key=lambda g: (-g["count"], g["path"], g["keyword"]))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


class ValidateSchema(LibraryTask):
    """Check each item against a JSON Schema; errors grouped by kind (see the module)."""

    title = "Schema validation"
    network = False  # the validator is third-party code run over data users send
    description = "Checks every item against the JSON Schema."
    packages: tuple[str, ...] = ("jsonschema",)

    def __init__(
        self,
        schema: Mapping[str, Any] | str | Path | None = None,
        *,
        choices: Mapping[str, Mapping[str, Any] | str | Path] | None = None,
        param: str | None = None,
        schema_input: int | None = None,
        backend: str | None = None,
        formats: bool = False,
        examples: int = 5,
        max_groups: int = 500,
        **options: Any,
    ):
        from gristmill.library.choosing import SchemaChoice

        self.choice = SchemaChoice(schema, choices=choices, param=param, schema_input=schema_input)
        self.backend, self.formats = backend, formats
        self.checkers = {
            key: Checker(value, backend, formats=formats)
            for key, value in self.choice.schemas.items()
        }
        self.examples = examples
        self.max_groups = max_groups
        if Checker({}, backend).name.startswith("jsonschema-rs"):
            self.packages = ("jsonschema", "jsonschema-rs")
        super().__init__(
            schema=self.choice.describe(),
            backend=backend,
            formats=formats,
            examples=examples,
            groups=max_groups,
            **options,
        )
        self.uses = self.choice.uses

    def checker_for(self, run: RunContext) -> tuple[str, Checker]:
        """The schema's name and its checker for ``run``."""
        picked = self.choice.pick(run)
        assert picked is not None  # a choice that may pick nothing is refused when defined
        name, schema = picked
        checker = self.checkers.get(name)
        if checker is None:  # a schema sent with the run
            checker = Checker(schema, self.backend, formats=self.formats)
        return name, checker

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        schema_name, checker = self.checker_for(run)
        reader = ItemReader(self.data(run), items=self.items)
        groups = Groups(self.examples, self.max_groups)
        items = invalid = errors = 0
        report = run.workdir / "errors.jsonl"
        with (
            run.stage("validating items"),
            report.open("w", encoding="utf-8") as out,
            self.nesting(reader),
        ):
            is_valid = checker.is_valid  # quicker than listing no errors
            for index, item in self.each_item(run, reader):
                items += 1
                if is_valid(item):
                    continue
                found = 0
                for problem in checker.problems(item):
                    found += 1
                    groups.add(index, problem)
                    line = {
                        "item": index,
                        "keyword": problem.keyword,
                        "path": json_path(problem.path),
                        "message": problem.message,
                    }
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
                if found:
                    invalid += 1
                    errors += found
        run.output(report, media_type="application/x-ndjson")
        run.log(f"{_count(items, 'item')} checked, {invalid:,} invalid, {_count(errors, 'error')}")
        return {
            "file": reader.file.name,
            "schema": schema_name,
            "validator": checker.name,
            "items": items,
            "valid_items": items - invalid,
            "invalid_items": invalid,
            "errors": errors,
            "groups": groups.sorted(),
            "other_errors": groups.others,
        }

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        if not isinstance(result, dict):
            return super().context(run, result)
        summary = (
            f"{result['items']:,} items in {result['file']}: {result['valid_items']:,} valid, "
            f"{result['invalid_items']:,} with {result['errors']:,} errors "
            f"({_count(len(result['groups']), 'kind')})"
        )
        rows = [
            {
                "count": group["count"],
                "error": f"{group['keyword']} at {group['path']}",
                "example": group["examples"][0]["message"] if group["examples"] else "",
                "items": ", ".join(str(example["item"]) for example in group["examples"]),
            }
            for group in result["groups"]
        ]
        return {"summary": summary, "validator": result["validator"], "errors": rows}

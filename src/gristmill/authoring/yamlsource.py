"""Reading YAML pipeline files safely, remembering where each value was written.

A file holds one pipeline per YAML document (documents are separated by ``---``). Only YAML's
safe subset is read (plain mappings, lists, text, numbers, booleans and null: no Python tags),
keys must be text and appear once per mapping, and anchors and aliases are refused (a file of
a few lines could otherwise stand for an enormous document). Every mistake is reported with the
file, the line and column, and the dotted path of the field, e.g.
``tools.yaml, line 12, column 14: steps.2.timeout: must be a number of seconds``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from gristmill.errors import PipelineFileError

FieldPath = tuple[str | int, ...]
"""Where a value sits in a document: keys and list indexes (counting from 0)."""

_STR_TAG = "tag:yaml.org,2002:str"


def dotted(path: Sequence[str | int]) -> str:
    """``("steps", 2, "timeout")`` → ``steps.2.timeout``."""
    return ".".join(str(part) for part in path)


@dataclass
class Document:
    """One YAML document of a pipeline file: its data and where each part of it was written."""

    data: Any
    label: str
    """The file as named in messages."""
    start: tuple[int, int]
    values: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    """(line, column), counting from 1, where the value at each path starts."""
    keys: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    """(line, column) of the key of each mapping entry."""

    def where(self, path: FieldPath, *, key: bool = False) -> str:
        """``file, line L, column C`` of the value at ``path`` (of its key with ``key=True``),
        or of the nearest enclosing value that has a position."""
        found = self.keys.get(path) if key else None
        probe = path
        while found is None:
            found = self.values.get(probe)
            if found is None and not probe:
                found = self.start
            probe = probe[:-1]
        line, column = found
        return f"{self.label}, line {line}, column {column}"

    def problem(self, path: FieldPath, message: str, *, key: bool = False) -> str:
        """A message naming the file, the position and the field: what users read."""
        named = f"{dotted(path)}: " if path else ""
        return f"{self.where(path, key=key)}: {named}{message}"


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _AliasError(yaml.MarkedYAMLError):
    """An alias (``*name``) where the format takes only values written out."""


class _Loader(yaml.SafeLoader):
    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise _AliasError(problem="an alias", problem_mark=mark)
        return super().compose_node(parent, index)


class _Walk:
    """Records the positions of a composed document and refuses what the format does not take."""

    def __init__(self, document: Document):
        self.document = document
        self.problems: list[str] = []

    def visit(self, node: yaml.Node, path: FieldPath) -> None:
        self.document.values[path] = _position(node)
        if isinstance(node, yaml.MappingNode):
            names: set[str] = set()
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                    self.problems.append(
                        self.document.problem(path, "keys must be plain text (quote them)")
                    )
                    continue
                name = str(key_node.value)
                self.document.keys[(*path, name)] = _position(key_node)
                if name in names:
                    self.problems.append(
                        self.document.problem((*path, name), "is given twice", key=True)
                    )
                names.add(name)
                self.visit(value_node, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.visit(item, (*path, index))


def _documents(text: str, label: str) -> Iterator[Document]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            document = Document(data=None, label=label, start=_position(node))
            walk = _Walk(document)
            walk.visit(node, ())
            if walk.problems:
                raise PipelineFileError(walk.problems)
            document.data = loader.construct_document(node)
            yield document
    finally:
        loader.dispose()


def read_documents(text: str, label: str) -> list[Document]:
    """The documents of a pipeline file's ``text``; :class:`PipelineFileError` if it is not
    YAML this format reads (the message names the line and column) or holds no document."""
    try:
        documents = list(_documents(text, label))
    except _AliasError as error:
        assert error.problem_mark is not None
        line, column = error.problem_mark.line + 1, error.problem_mark.column + 1
        raise PipelineFileError(
            [
                f"{label}, line {line}, column {column}: anchors and aliases (&name, *name) "
                "are not supported; write the value out"
            ]
        ) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = error.problem or error.context or "not valid YAML"
        raise PipelineFileError([f"{label}{where}: not valid YAML: {what}"]) from None
    except yaml.YAMLError as error:
        raise PipelineFileError([f"{label}: not valid YAML: {error}"]) from None
    if not documents:
        raise PipelineFileError([f"{label}: holds no pipeline (the file is empty)"])
    return documents

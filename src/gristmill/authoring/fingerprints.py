"""Fingerprints of step results, and the words that say why a result is stale.

A fingerprint records what a step's result was computed from: the task's identity, its code
(normalised, so comments, docstrings and formatting do not count), its explicit version, the
parameters it used, the fingerprints of the upstream results it read, the digests of the output
files of those steps, the installed versions of the distributions it names (``packages``) and the
digests of the run's inputs. Presentation (a class task's ``title``, ``template``,
``description``, ``staff_only`` and ``log_level`` attributes and its ``context`` method) does not
count: changing how a result is shown does not make it stale. The components are stored beside
the result, so that when they differ later the results page can say *what* changed, not only
that something did.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def normalised_source(obj: Any) -> str:
    """Return ``obj``'s source as a canonical AST dump, blind to comments and formatting.

    Falls back to the compiled bytecode when the source cannot be found (code typed into a REPL).
    """
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        tree = _strip_docstrings(ast.parse(source))
    except (OSError, TypeError, SyntaxError):
        code = getattr(obj, "__code__", None)
        if code is None:
            return f"<unavailable source of {getattr(obj, '__qualname__', repr(obj))}>"
        bytecode: bytes = code.co_code
        return bytecode.hex() + repr(code.co_consts)
    # Drop decorators so that e.g. ``@task(version="2")`` is judged through ``version`` only.
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.decorator_list = []
            if isinstance(node, ast.ClassDef):
                # ``version`` and ``packages`` are fingerprint components of their own, and
                # presentation does not count: neither is a code change.
                node.body = [statement for statement in node.body if not _uncounted(statement)] or [
                    ast.Pass()
                ]
            break
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


UNCOUNTED_ATTRIBUTES = frozenset(
    {
        "version",
        "packages",
        "title",
        "template",
        "description",
        "staff_only",
        "log_level",
        "network",
    }
)
"""Class attributes of a task that are not part of its code fingerprint."""

UNCOUNTED_METHODS = frozenset({"context"})
"""Methods of a task class that only shape the results page, built from the stored result."""


def _uncounted(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
        return statement.name in UNCOUNTED_METHODS
    if isinstance(statement, ast.Assign):
        targets: Iterable[ast.expr] = statement.targets
    elif isinstance(statement, ast.AnnAssign):
        targets = [statement.target]
    else:
        return False
    return any(isinstance(t, ast.Name) and t.id in UNCOUNTED_ATTRIBUTES for t in targets)


def code_digest(*parts: str) -> str:
    """Return the SHA-256 hex digest of the given code descriptions."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def pipeline_version(steps: Iterable[tuple[str, Mapping[str, Any] | None]]) -> str | None:
    """The version of a pipeline's code that a run ran: a SHA-256 hex digest over each step's
    name and its fingerprint's task, code digest, explicit version and package versions, in
    step order. ``steps`` are ``(name, stored fingerprint)``; ``None`` while a step has no
    fingerprint yet (it has not run), as the version is not known then.

    Parameters and inputs are left out: two runs of the same code on other data share it."""
    parts = []
    for name, data in steps:
        if not data:
            return None
        parts.append(
            [
                name,
                data.get("task"),
                data.get("code"),
                data.get("version"),
                data.get("packages") or {},
            ]
        )
    if not parts:
        return None
    return hashlib.sha256(_canonical(parts).encode("utf-8")).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Fingerprint:
    """What one step result was computed from."""

    task: str
    """Dotted name of the task (``module.QualName``)."""
    code: str
    """Digest of the task's normalised code."""
    version: str | None = None
    """The task's explicit version, if it has one."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """The parameters the task used, by name."""
    upstream: Mapping[str, str] = field(default_factory=dict)
    """Fingerprint digests of the upstream results, by step name."""
    inputs: Sequence[tuple[str, str]] = ()
    """``(name, sha256)`` of each input of the run."""
    files: Mapping[str, Sequence[tuple[str, str]]] = field(default_factory=dict)
    """``(name, sha256)`` of each output file of the upstream steps read, by step name (only
    the steps that registered files)."""
    packages: Mapping[str, str] = field(default_factory=dict)
    """Installed versions of the distributions the task names, by distribution name."""

    @property
    def digest(self) -> str:
        """One SHA-256 hex digest over all the components."""
        return hashlib.sha256(_canonical(self.to_dict()).encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The components as plain JSON data, for storage."""
        data: dict[str, Any] = {
            "task": self.task,
            "code": self.code,
            "version": self.version,
            "params": dict(self.params),
            "upstream": dict(self.upstream),
            "inputs": [list(pair) for pair in self.inputs],
        }
        # Present only when not empty, so that fingerprints stored before these components
        # existed keep their digests (and their results stay current).
        if self.files:
            data["files"] = {step: [list(p) for p in pairs] for step, pairs in self.files.items()}
        if self.packages:
            data["packages"] = dict(self.packages)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        """Rebuild a fingerprint from :meth:`to_dict`'s output."""
        return cls(
            task=data["task"],
            code=data["code"],
            version=data.get("version"),
            params=dict(data.get("params") or {}),
            upstream=dict(data.get("upstream") or {}),
            inputs=tuple((str(n), str(d)) for n, d in data.get("inputs") or ()),
            files={
                str(step): tuple((str(n), str(d)) for n, d in pairs)
                for step, pairs in (data.get("files") or {}).items()
            },
            packages={str(k): str(v) for k, v in (data.get("packages") or {}).items()},
        )


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def explain_change(old: Fingerprint, new: Fingerprint, *, task_title: str) -> list[str]:
    """Say, in words a user can read, why a result made under ``old`` is stale under ``new``.

    Returns an empty list when nothing that counts has changed.
    """
    reasons: list[str] = []
    if old.task != new.task:
        reasons.append(f"the step now runs `{new.task}` instead of `{old.task}`")
    elif old.code != new.code:
        reasons.append(f"code of `{task_title}` changed")
    if old.version != new.version:
        reasons.append(
            f"version of `{task_title}` {old.version or 'none'} → {new.version or 'none'}"
        )
    for name in sorted(set(old.params) | set(new.params)):
        before, after = old.params.get(name, None), new.params.get(name, None)
        if name not in old.params:
            reasons.append(f"parameter `{name}` added ({_short(after)})")
        elif name not in new.params:
            reasons.append(f"parameter `{name}` no longer used")
        elif _canonical(before) != _canonical(after):
            reasons.append(f"parameter `{name}` {_short(before)} → {_short(after)}")
    for step in sorted(set(old.upstream) | set(new.upstream)):
        if step not in old.upstream:
            reasons.append(f"now reads upstream step `{step}`")
        elif step not in new.upstream:
            reasons.append(f"no longer reads upstream step `{step}`")
        elif old.upstream[step] != new.upstream[step]:
            reasons.append(f"upstream step `{step}` was recomputed")
    reasons.extend(_file_changes(old.files, new.files))
    for package in sorted(set(old.packages) | set(new.packages)):
        before, after = old.packages.get(package), new.packages.get(package)
        if before is None:
            reasons.append(f"now counts package {package} {after}")
        elif after is None:
            reasons.append(f"no longer counts package {package}")
        elif before != after:
            reasons.append(f"{package} {before} → {after}")
    if list(map(tuple, old.inputs)) != list(map(tuple, new.inputs)):
        reasons.append("the inputs changed")
    if not reasons and old.digest != new.digest:
        reasons.append("its fingerprint changed")
    return reasons


def _file_changes(
    old: Mapping[str, Sequence[tuple[str, str]]], new: Mapping[str, Sequence[tuple[str, str]]]
) -> list[str]:
    reasons = []
    for step in sorted(set(old) | set(new)):
        before, after = dict(old.get(step, ())), dict(new.get(step, ()))
        for name in sorted(set(before) | set(after)):
            if name not in before:
                reasons.append(f"output `{name}` of step `{step}` is new")
            elif name not in after:
                reasons.append(f"output `{name}` of step `{step}` is gone")
            elif before[name] != after[name]:
                reasons.append(f"output `{name}` of step `{step}` changed")
    return reasons

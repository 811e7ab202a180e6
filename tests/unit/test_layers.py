"""The package's layers, as docs/architecture.md draws them: each part imports only itself and
the parts below it (imports made only for type checking do not count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "src" / "gristmill"

LAYERS: list[set[str]] = [
    {"errors", "settings", "states", "logfields"},
    {"client"},  # the REST client: httpx, errors and states only
    {"authoring", ""},  # "" is the package itself: the authoring API it exports
    {"library"},  # common tasks: authoring, errors and states only
    {"storage"},
    {"store"},
    {"engine"},
    {"app"},
    {"executors"},
    {"demo"},
    {"server"},
    {"cli", "__main__"},
]
"""From the bottom up."""


def part(module: str) -> str:
    """The part of ``gristmill.x.y`` (``x``), or ``""`` for ``gristmill`` itself."""
    return module.split(".")[1] if "." in module else ""


def layer(name: str) -> int:
    return next(i for i, parts in enumerate(LAYERS) if name in parts)


def type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return [(line, name) for line, name in found if name.split(".")[0] == "gristmill"]


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in modules()}
    parts = {"" if name == "__init__" else name for name in parts}
    assert parts <= set().union(*LAYERS)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_part_and_the_parts_below(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    own = "" if relative.parts == ("__init__.py",) else relative.parts[0].removesuffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    upward = [
        f"line {line}: {name}" for line, name in imports(tree) if layer(part(name)) > layer(own)
    ]
    assert upward == []

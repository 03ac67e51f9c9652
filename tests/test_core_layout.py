"""The core's shape: no import cycle, no built-in packer named, its size, its layout table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from builtin_packers import EXPECTED

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "core" / "src" / "fedpack"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
#: The built-in packers: the core must never name them.
BUILT_INS = frozenset(EXPECTED)
#: The core proper: what neither the Flower adapters nor the plugin author kit hold.
ADAPTERS = ("flwr", "testing")
MAX_CORE_LINES = 2400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def core_modules() -> dict[str, Path]:
    return {
        name: path
        for name, path in MODULES.items()
        if not any(name.startswith(f"fedpack.{adapter}") for adapter in ADAPTERS)
    }


def imports_of(name: str, path: Path) -> set[str]:
    """Every fedpack module ``name`` imports, at module level or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from . import hookspecs`` imports the module; ``from .x import y`` imports .x
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = {name: imports_of(name, path) for name, path in MODULES.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def string_constants(tree: ast.AST) -> list[str]:
    """String constants of a module, docstrings left out."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("name", sorted(core_modules()))
def test_the_core_never_names_a_built_in_packer(name: str) -> None:
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    words = {w for text in string_constants(tree) for w in re.findall(r"[a-z0-9_]+", text)}
    assert not words & BUILT_INS, f"{name} names {sorted(words & BUILT_INS)}"


def test_the_built_in_list_is_the_plugins_folder() -> None:
    folders = {p.name.replace("-", "_") for p in (ROOT / "plugins").iterdir() if p.is_dir()}
    assert folders == BUILT_INS


def test_the_core_fits_its_size() -> None:
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in core_modules().values())
    assert lines <= MAX_CORE_LINES, f"core/src/fedpack without flwr/ and testing/: {lines} lines"


def test_contributing_lists_every_module_with_its_job() -> None:
    text = CONTRIBUTING.read_text(encoding="utf-8")
    table = text.split("### The core's modules", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([\w/.]+\.py)` \| (.+) \|$", table, re.M))
    files = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    assert set(rows) == files
    assert all(len(job.strip()) > 10 for job in rows.values())

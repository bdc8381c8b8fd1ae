"""The house's rules, read from the source with ``ast`` (nothing is imported or run).

Rooms import only downward (the floors of docs/architecture.md), no import cycles, no private
name (``_x``) taken from another module, no module over 400 lines, no function over 80 lines,
no folder over 12 modules, and each folder's ``__init__`` docstring says what may be imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnstep"
TOP = PACKAGE.name

#: room -> the rooms it may import (modules directly in the package: anyone; cli: anything)
ALLOWED = {
    "ops": {"ops"},
    "backends": {"backends", "ops"},
    "checker": {"checker", "ops"},
    "grading": {"grading", "checker", "ops"},
    "nn": {"nn", "ops", "backends"},
    "data": {"data"},
    "train": {"train", "nn", "ops", "backends", "data"},
    "explain": {"explain", "ops", "nn", "data"},
    "interop": {"interop", "nn", "ops", "backends", "train", "data"},
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_FOLDER_MODULES = 12



def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _room(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return None


def _imports(module: str) -> Iterator[tuple[str, str | None]]:
    """(imported module, imported name or None) for every import in ``module``."""
    is_package = MODULES[module].name == "__init__.py"
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub, None) if sub in MODULES else (target, alias.name)


def _known(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


EDGES = {m: {t for name, _ in _imports(m) if name.split(".")[0] == TOP
             and (t := _known(name)) not in (None, m)} for m in MODULES}


def test_rooms_import_only_what_they_may():
    wrong = []
    for module, targets in EDGES.items():
        room = _room(module)
        if room not in ALLOWED:
            continue
        for target in targets:
            if target == TOP:
                wrong.append(f"{module} imports the package itself (its __init__ loads all)")
            elif (other := _room(target)) is not None and other not in ALLOWED[room]:
                wrong.append(f"{module} ({room}/) imports {target} ({other}/)")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    # Tarjan's strongly connected components; the package __init__ re-exports everything
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in EDGES[v] - {TOP}:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(" -> ".join(sorted(component)))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert not cycles, "\n".join(cycles)


def test_no_private_name_crosses_a_module():
    taken = [f"{module} takes {name} from {target}"
             for module in MODULES for target, name in _imports(module)
             if name and name.startswith("_") and not name.startswith("__")
             and target.split(".")[0] == TOP and _known(target) != module]
    assert not taken, "\n".join(taken)


def test_no_module_over_400_lines():
    big = [f"{path.relative_to(PACKAGE.parent)}: {n} lines" for path in MODULES.values()
           if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not big, "\n".join(big)


def test_no_function_over_80_lines():
    long = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {n} lines")
    assert not long, "\n".join(long)


def test_no_folder_over_12_modules():
    crowded = []
    for folder in [PACKAGE, *(p for p in PACKAGE.rglob("*") if p.is_dir())]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        if folder != PACKAGE and len(modules) > MAX_FOLDER_MODULES:
            crowded.append(f"{folder.relative_to(PACKAGE.parent)}: {len(modules)} modules")
    assert not crowded, "\n".join(crowded)


@pytest.mark.parametrize("init", sorted(p for p in PACKAGE.rglob("__init__.py")
                                        if p.parent != PACKAGE),
                         ids=lambda p: str(p.parent.relative_to(PACKAGE)))
def test_each_folder_says_what_it_may_import(init):
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert doc, f"{init} has no docstring"
    assert "may import" in doc.lower() or init.parent.name in ("cli", "commands"), \
        f"{init}: the docstring does not say what this folder may import"

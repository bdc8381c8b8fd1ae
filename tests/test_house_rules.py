"""The house's rules (DESIGN.md), checked on the rooms that keep them: imports only downward, no
import cycle, no private name imported from another module, modules of at most 400 lines,
functions of at most 80, folders of at most 12 modules. Read with ``ast``: nothing is run.

The rooms are listed in ROOMS; a room joins when it keeps the rules (the others are being
brought there, issue 22)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cnnstep"
#: room -> the rooms it may import (modules directly in the package: anyone)
ALLOWED = {"ops": {"ops"}, "backends": {"backends", "ops"}}
ROOMS = sorted(ALLOWED)
TOP = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def _modules(room: str) -> list[Path]:
    return sorted((PACKAGE / room).rglob("*.py"))


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names imported from it) of every import, lazy ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = _name(path).split(".")
                here = here if path.name == "__init__.py" else here[:-1]
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            out.append((base, [alias.name for alias in node.names]))
    return out


@pytest.mark.parametrize("room", ROOMS)
def test_a_room_imports_only_the_rooms_below_it_and_no_private_name(room):
    for path in _modules(room):
        for module, names in _imports(path):
            parts = module.split(".")
            if parts[0] != "cnnstep" or len(parts) < 2 or parts[1] in TOP:
                continue
            assert parts[1] in ALLOWED[room], f"{_name(path)} imports {module}"
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{_name(path)} imports {private} from {module}"


@pytest.mark.parametrize("room", ROOMS)
def test_a_room_has_small_modules_functions_and_folders(room):
    for path in _modules(room):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 400, f"{_name(path)}: over 400 lines"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                assert lines <= 80, f"{_name(path)}.{node.name}: {lines} lines"
    for folder in [PACKAGE / room, *(p for p in (PACKAGE / room).rglob("*") if p.is_dir())]:
        if folder.name != "__pycache__":
            assert len(list(folder.glob("*.py"))) <= 12, f"{folder}: over 12 modules"


def test_no_import_cycle_among_these_rooms_and_the_top_level_modules():
    paths = [p for room in ROOMS for p in _modules(room)] + [
        p for p in PACKAGE.glob("*.py") if p.stem in TOP]
    names = {_name(p): p for p in paths}

    def targets(path: Path) -> set[str]:
        # ``from pkg import module`` depends on that module (as tools/house.py reads it)
        out = set()
        for module, imported in _imports(path):
            subs = {f"{module}.{n}" for n in imported} & set(names)
            out |= subs or ({module} & set(names))
        return out

    edges = {n: targets(p) - {n} for n, p in names.items()}
    for start in names:
        seen, todo = set(), list(edges[start])
        while todo:
            node = todo.pop()
            assert node != start, f"import cycle through {start}"
            if node not in seen:
                seen.add(node)
                todo += edges[node]

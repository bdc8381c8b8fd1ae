"""Read a learner's ``.py`` file or notebook and keep only what defines things.

Nothing here executes the learner's code: it is read and parsed, and the statements that are
safe to run (imports, function and class definitions, simple assignments of literals and names)
are picked out. The child process (:mod:`cnnstep.checker.sandbox.child`) runs them.

A notebook becomes a list of *units*, one per code cell; a ``.py`` file is one unit. IPython
syntax (``%magic``, ``%%cell magic``, ``!shell``, ``x = !cmd``, ``obj?``) is blanked out line by
line, keeping line numbers, so that messages can point at the learner's own lines.
"""

from __future__ import annotations

import ast
import io
import os
import re
import threading
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.source.files import notebook_cells, read_regular_file
from cnnstep.errors import UserError

# Cell magics whose body is ordinary Python that runs once; the body of any other cell magic
# (%%bash, %%html, %%writefile, %%timeit...) is skipped.
_PYTHON_CELL_MAGICS = {"time", "capture"}

# A line that IPython would not hand to Python: a magic, a shell escape, a shell capture, a help
# request.
_IPYTHON_LINE = re.compile(
    r"""^\s*(?:
        [%!]                                  # %magic, !shell
      | [A-Za-z_][\w.,\s]*=\s*[%!]            # x = !ls, x = %who_ls
      | [\w.]+\?{1,2}\s*$                     # obj? / obj??
      | \?{1,2}[\w.]+\s*$                     # ?obj
    )""",
    re.VERBOSE,
)


@dataclass
class Unit:
    """One piece of source that is parsed on its own: a notebook cell or a whole file.

    ``label`` names it in messages ("cell 4"); ``None`` for a ``.py`` file.
    """

    source: str
    label: str | None = None


@dataclass
class Program:
    """A learner's file, read and split into units; nothing in it has been run."""

    path: str
    units: list[Unit]
    warnings: list[str] = field(default_factory=list)
    # Units that do not parse (notebook cells only): label -> one-line reason.
    broken: dict[str, str] = field(default_factory=dict)
    broken_sources: dict[str, str] = field(default_factory=dict)
    # Function names each broken unit defines (a line-by-line look).
    broken_defs: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class Statement:
    """A top-level statement selected to run, with where it came from."""

    node: ast.stmt
    unit: int
    label: str | None
    kind: str  # "import", "def", "assign", "try"
    binds: tuple[str, ...]
    needs_all: bool = False  # a star import: cannot tell which names it binds


def label_text(label: str | None) -> str:
    """A unit's label in the current language ("cell 3")."""
    if label and label.startswith("cell "):
        return _("cell {number}").format(number=label[5:])
    return label or ""


def where(label: str | None, lineno: int) -> str:
    """'cell 3, line 4' for a notebook cell, 'line 4' for a file (in the current language)."""
    if label:
        return _("{cell}, line {line}").format(cell=label_text(label), line=lineno)
    return _("line {line}").format(line=lineno)


def strip_ipython(source: str) -> tuple[str, bool]:
    """Blank out IPython-only lines (keeping line numbers).

    Returns the new source and whether the whole cell is to be skipped (a non-Python cell magic).
    """
    lines = source.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        magic = lines[first].lstrip()[2:].split(maxsplit=1)
        if not magic or magic[0] not in _PYTHON_CELL_MAGICS:
            return "", True
        lines[first] = ""
    out = []
    for line in lines:
        if _IPYTHON_LINE.match(line):
            indent = line[: len(line) - len(line.lstrip())]
            # `pass` keeps an indented block valid when its only line was a magic.
            out.append(indent + "pass" if indent else "")
        else:
            out.append(line)
    return "\n".join(out), False


MAX_PY_BYTES = 2 * 1024**2
MAX_NOTEBOOK_BYTES = 32 * 1024**2
MAX_DEPTH = 200  # AST nesting: deeper is refused (the checker's own walkers stay bounded)
_DEF_LINE = re.compile(r"\s*(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(")


def _check_depth(tree: ast.AST, filename: str) -> None:
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SyntaxError(_("nested more than {depth} levels deep").format(depth=MAX_DEPTH),
                              (filename, getattr(node, "lineno", 1), 0, ""))
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


# CPython 3.11 keeps the AST builder's recursion counter per interpreter (python/cpython#106905):
# two parses at once (``grade --jobs``) end in "SystemError: AST constructor recursion depth
# mismatch". So the parent parses one source at a time, and makes a parse again that an AST built
# elsewhere meanwhile (``traceback``'s carets, a finalizer) spoiled: the source was fine.
_PARSE_LOCK = threading.Lock()


def parse_python(source: str, filename: str = "<unknown>", mode: str = "exec") -> ast.AST:
    """``ast.parse``, one thread at a time (see ``_PARSE_LOCK``); raises as ``ast.parse`` does."""
    for tries_left in (2, 1, 0):
        with _PARSE_LOCK:
            try:
                return ast.parse(source, filename=filename, mode=mode)
            except SystemError as exc:
                if not tries_left or "recursion depth mismatch" not in str(exc):
                    raise
    raise AssertionError("unreachable: the last try returns or raises")


def parse_unit(source: str, filename: str) -> ast.Module:
    """Parse as Python; if that fails, parse again with IPython lines blanked out.

    Raises SyntaxError when neither parses (the error of the blanked-out version, whose lines
    are the learner's own); also for code nested too deeply, null bytes, or a parser that runs
    out of stack or memory.
    """
    try:
        try:
            tree = parse_python(source, filename)
        except SyntaxError:
            stripped, skip = strip_ipython(source)
            if skip:
                return ast.Module(body=[], type_ignores=[])
            tree = parse_python(stripped, filename)
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        what = _("null bytes") if "null" in str(exc) else _("too complex to parse")
        raise SyntaxError(f"{what} ({type(exc).__name__})", (filename, 1, 0, "")) from None
    assert isinstance(tree, ast.Module)  # mode "exec" always parses a module
    _check_depth(tree, filename)
    return tree


def defined_names(source: str) -> set[str]:
    """Names of functions a source defines, by a line-by-line look (it need not parse)."""
    return {m.group(1) for line in source.split("\n") if (m := _DEF_LINE.match(line))}


def read_program(path: str | Path) -> Program:
    """Read FILE (``.py`` source or ``.ipynb`` notebook) without running any of it.

    Raises
    ------
    UserError
        When the file cannot be read (missing, not a regular file, too big), is not a valid
        notebook, or (for ``.py``) does not parse.
    """
    path = Path(path)
    if not os.path.lexists(path):
        # The wording every command uses for a missing file (cnnstep.cli.options.MISSING_FILE).
        raise UserError(_("{path}: no such file").format(path=path))
    if path.suffix.lower() == ".ipynb":
        return _read_notebook(path, read_regular_file(path, MAX_NOTEBOOK_BYTES))
    data = read_regular_file(path, MAX_PY_BYTES)
    try:
        encoding, _lines = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise UserError(_("cannot read {path}: {why}").format(path=repr(str(path)), why=exc)) \
            from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        parse_unit(text, str(path))
    except SyntaxError as exc:
        raise UserError(_("{path}: line {line}: {why}; fix the syntax error and check "
                          "again").format(path=path, line=exc.lineno, why=exc.msg)) from None
    return Program(str(path), [Unit(text, None)])


def _read_notebook(path: Path, data: bytes) -> Program:
    program = Program(str(path), [])
    number = 0
    for index, cell in enumerate(notebook_cells(path, data), start=1):
        if not isinstance(cell, dict):
            raise UserError(_("{path}: cell {number} is not a JSON object").format(
                path=repr(str(path)), number=index))
        if cell.get("cell_type") != "code":
            continue
        number += 1
        label = f"cell {number}"
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            raise UserError(_("{path}: {cell}: its source is not text").format(
                path=repr(str(path)), cell=label_text(label)))
        try:
            parse_unit(source, label)
        except SyntaxError as exc:
            reason = f"{where(label, exc.lineno or 1)}: {exc.msg}"
            program.broken[label] = reason
            program.broken_sources[label] = source
            program.broken_defs[label] = defined_names(source)
            program.warnings.append(_("{why}; this cell is skipped").format(why=reason))
            continue
        program.units.append(Unit(source, label))
    return program


# --- choosing what to run -------------------------------------------------------------------


def _is_simple_value(node: ast.AST) -> bool:
    """Literals, names, ``np.pi``-style attributes and arithmetic/containers of them."""
    if isinstance(node, ast.Constant | ast.Name | ast.Lambda):
        return True
    if isinstance(node, ast.Attribute):
        return _is_simple_value(node.value)
    if isinstance(node, ast.UnaryOp):
        return _is_simple_value(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_simple_value(node.left) and _is_simple_value(node.right)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(_is_simple_value(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is None or _is_simple_value(k) for k in node.keys) and all(
            _is_simple_value(v) for v in node.values
        )
    return False


def _target_names(target: ast.AST) -> list[str] | None:
    """Names bound by an assignment target, or None when it is not plain names."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        names: list[str] = []
        for element in target.elts:
            sub = _target_names(element)
            if sub is None:
                return None
            names += sub
        return names
    return None


def _select(body: list[ast.stmt], unit: int, label: str | None) -> tuple[list[Statement], dict]:
    """Pick the statements to run; also map names bound by skipped assignments to their line."""
    kept: list[Statement] = []
    skipped_names: dict[str, str] = {}
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                kept.append(Statement(node, unit, label, "future", ()))
                continue
            star = any(alias.name == "*" for alias in node.names)
            # `import a.b` binds `a`; `import a.b as c` binds `c`.
            binds = tuple((alias.asname or alias.name).split(".")[0]
                          for alias in node.names if alias.name != "*")
            kept.append(Statement(node, unit, label, "import", binds, needs_all=star))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            kept.append(Statement(node, unit, label, "def", (node.name,)))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [_target_names(t) for t in targets]
            value_ok = node.value is not None and _is_simple_value(node.value)
            if value_ok and all(n is not None for n in names):
                binds = tuple(name for group in names for name in group)  # type: ignore[union-attr]
                kept.append(Statement(node, unit, label, "assign", binds))
            else:
                for group in names:
                    for name in group or []:
                        skipped_names.setdefault(name, where(label, node.lineno))
        elif isinstance(node, ast.Try):
            # `try: import x / except ImportError: x = None` is common; keep its defining parts.
            parts = [node.body, node.orelse, node.finalbody] + [h.body for h in node.handlers]
            inner = []
            for part in parts:
                sub, sub_skipped = _select(part, unit, label)
                inner += sub
                for name, loc in sub_skipped.items():
                    skipped_names.setdefault(name, loc)
            if inner:
                kept.append(Statement(_filtered_try(node, unit, label), unit, label, "try",
                                      tuple(n for s in inner for n in s.binds),
                                      needs_all=any(s.needs_all for s in inner)))
    return kept, skipped_names


def _filtered_try(node: ast.Try, unit: int, label: str | None) -> ast.Try:
    def keep(part: list[ast.stmt]) -> list[ast.stmt]:
        chosen = [s.node for s in _select(part, unit, label)[0]]
        return chosen

    body = keep(node.body) or [ast.Pass(lineno=node.lineno, col_offset=node.col_offset)]
    handlers = []
    for handler in node.handlers:
        h_body = keep(handler.body) or [ast.Pass(lineno=handler.lineno, col_offset=0)]
        handlers.append(
            ast.ExceptHandler(type=handler.type, name=handler.name, body=h_body,
                              lineno=handler.lineno, col_offset=handler.col_offset)
        )
    new = ast.Try(body=body, handlers=handlers, orelse=keep(node.orelse),
                  finalbody=keep(node.finalbody))
    ast.copy_location(new, node)
    if not new.handlers and not new.finalbody:
        new.finalbody = [ast.Pass(lineno=node.lineno, col_offset=node.col_offset)]
    return ast.fix_missing_locations(new)


def _names_used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


@dataclass
class Selection:
    """What the child runs, in order, and what was left out."""

    statements: list[Statement]
    skipped_count: int
    unused_imports: list[str]
    # Names that top-level code assigns but that the checker does not run: name -> 'line N'.
    skipped_names: dict[str, str]


def select_statements(units: list[Unit]) -> Selection:
    """Parse every unit and choose the statements to run.

    Imports whose names no kept definition uses are left out too (a notebook's ``import h5py``
    or ``from public_tests import ...`` have nothing to do with the eight functions, and are often
    not installed); star imports always run.
    """
    chosen: list[Statement] = []
    skipped_names: dict[str, str] = {}
    total = 0
    for index, unit in enumerate(units):
        tree = parse_unit(unit.source, unit.label or "<file>")
        total += len(tree.body)
        kept, skipped = _select(tree.body, index, unit.label)
        chosen += kept
        for name, loc in skipped.items():
            skipped_names.setdefault(name, loc)
    used: set[str] = set()
    for statement in chosen:
        if statement.kind not in ("import", "future"):
            used |= _names_used(statement.node)
    final: list[Statement] = []
    unused: list[str] = []
    for statement in chosen:
        if (
            statement.kind == "import"
            and not statement.needs_all
            and not used.intersection(statement.binds)
        ):
            unused.append(ast.unparse(statement.node))
            continue
        final.append(statement)
    defined = {name for s in final for name in s.binds}
    skipped_names = {k: v for k, v in skipped_names.items() if k not in defined}
    top_level_kept = sum(1 for s in chosen)
    return Selection(final, max(total - top_level_kept, 0), unused, skipped_names)

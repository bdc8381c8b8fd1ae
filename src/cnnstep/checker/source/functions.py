"""A program built from live function objects (a notebook's), for
:func:`cnnstep.checker.check_functions`.

The learner's function objects are not called here. Their *source* is taken with
:mod:`inspect` (a notebook cell's source included), with what it needs from the notebook's
namespace written back as source too: the modules it uses (``import numpy as np``), the helper
functions of the learner's that it calls, and plain constants. That program is then checked
exactly as ``cnnstep check`` checks a file, in the same sandboxed child.
"""

from __future__ import annotations
import __future__

import ast
import builtins
import contextlib
import inspect
import itertools
import math
import sys
import textwrap
import types
from typing import Any

from cnnstep.checker.i18n import N_
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.source.loader import Program, Unit, parse_python, parse_unit

_LITERALS = (int, float, complex, str, bytes, bool, type(None))


def _names_read(fn: types.FunctionType) -> list[str]:
    """Global names a function (and the functions nested in it) reads, in first-use order."""
    names: dict[str, None] = {}
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        names.update(dict.fromkeys(code.co_names))
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return list(names)


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is built of the exact built-in literal types only (no subclass, whose
    ``repr`` could say something else than the value the function reads)."""
    if depth > 20:
        return False
    if type(value) in _LITERALS:
        return True
    if type(value) in (tuple, list):
        return all(_plain(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _literal_source(name: str, value: Any) -> str | None:
    """``name = <value>`` when ``value`` is a plain constant that reads back equal."""
    if not _plain(value):
        return None
    try:
        text = repr(value)
        if len(text) > 10_000 or ast.literal_eval(parse_python(text, mode="eval")) != value:
            return None
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return f"{name} = {text}\n"


def _import_source(name: str, value: Any) -> str | None:
    """An import statement that binds ``name`` to ``value`` (a module, or a function of an
    importable module), or None."""
    if isinstance(value, types.ModuleType):
        module = value.__name__
        if module == name:
            return f"import {module}\n"
        return f"import {module} as {name}\n"
    owner = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if not isinstance(owner, str) or not isinstance(qualname, str) or "." in qualname \
            or owner in ("__main__", "builtins") or owner not in sys.modules:
        return None
    if getattr(sys.modules[owner], qualname, None) is not value:
        return None
    return f"from {owner} import {qualname}" + (f" as {name}\n" if name != qualname else "\n")


def function_source(fn: Any) -> str:
    """The dedented source of a function; ValueError saying why when there is none."""
    if not isinstance(fn, types.FunctionType):
        raise ValueError(_("it is a {type}, not a function written in Python").format(
            type=type(fn).__name__))
    try:
        # The code object's own lines, never those of a `__wrapped__` twin.
        source = textwrap.dedent(inspect.getsource(fn.__code__))
    except (OSError, TypeError):
        raise ValueError(_("its source cannot be found (made with exec, or defined in a file "
                           "that is gone); define it in a notebook cell or a .py file")) from None
    try:
        tree = parse_unit(source, fn.__name__)
    except SyntaxError as exc:
        raise ValueError(_("its source does not parse ({why})").format(why=exc.msg)) from None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if len(defs) != 1 or defs[0].name != fn.__name__:
        raise ValueError(_("its source is not one `def` statement (a lambda, or a function "
                           "made by another)"))
    _check_runs_as_written(fn, source, defs[0])
    return source


_MISMATCH = N_("the source found for it is not the code that runs (its definition was changed "
               "after it was made: its code, defaults or closure); run its cell again, or "
               "grade the notebook file with `cnnstep grade`")


def _check_runs_as_written(fn: types.FunctionType, source: str, node: ast.AST) -> None:
    """ValueError unless compiling ``source`` gives ``fn``'s own code, and its defaults and
    closure are what the source says (what the sandbox runs is what the kernel runs)."""
    if fn.__closure__ or not any(_same_code(code, fn.__code__)
                                 for code in _compiled(fn, source)):
        raise ValueError(_(_MISMATCH))
    args = node.args  # type: ignore[attr-defined]
    try:
        defaults = tuple(ast.literal_eval(d) for d in args.defaults)
        kwdefaults = {a.arg: ast.literal_eval(d) for a, d in zip(args.kwonlyargs,
                                                                  args.kw_defaults) if d}
    except (ValueError, SyntaxError, TypeError, RecursionError):
        raise ValueError(_("its default values are not plain constants, so the checker cannot "
                           "tell they are the ones written")) from None
    if (fn.__defaults__ or ()) != defaults or (fn.__kwdefaults__ or {}) != kwdefaults \
            or not all(_plain(v) for v in defaults + tuple(kwdefaults.values())):
        raise ValueError(_(_MISMATCH))


def _compiled(fn: types.FunctionType, source: str) -> list[types.CodeType]:
    """The code of ``fn`` compiled from ``source``: with and without postponed annotations (a
    notebook may have turned them on), and with each choice of which modules it reads were
    imported in the same cell (CPython compiles ``np.pad(...)`` differently then)."""
    modules = [n for n in _names_read(fn)
               if isinstance(fn.__globals__.get(n), types.ModuleType)][:4]
    found = []
    for flags in (0, __future__.annotations.compiler_flag):
        for chosen in itertools.chain.from_iterable(
                itertools.combinations(modules, k) for k in range(len(modules) + 1)):
            head = "".join(f"import {fn.__globals__[n].__name__} as {n}\n" for n in chosen)
            try:
                module = compile(head + source, "<check>", "exec", flags=flags,
                                 dont_inherit=True)
            except (SyntaxError, ValueError):
                continue
            found += [c for c in module.co_consts
                      if isinstance(c, types.CodeType) and c.co_name == fn.__name__]
    return found


def _same_code(a: types.CodeType, b: types.CodeType) -> bool:
    """Whether two code objects do the same (positions and file names aside)."""
    fields = ("co_code", "co_names", "co_varnames", "co_freevars", "co_cellvars", "co_argcount",
              "co_posonlyargcount", "co_kwonlyargcount", "co_flags")
    if any(getattr(a, f) != getattr(b, f) for f in fields) or \
            len(a.co_consts) != len(b.co_consts):
        return False
    for x, y in zip(a.co_consts, b.co_consts):
        if isinstance(x, types.CodeType) or isinstance(y, types.CodeType):
            if not (isinstance(x, types.CodeType) and isinstance(y, types.CodeType)
                    and _same_code(x, y)):
                return False
        elif type(x) is not type(y) or (x != y and x == x):  # NaN equals itself here
            return False
    return True


class Builder:
    """The program for the sandbox: an imports-and-constants unit, then one unit per function."""

    def __init__(self) -> None:
        self.header: dict[str, str] = {}  # name -> the line that binds it
        self.units: list[Unit] = []
        self.done: set[int] = set()

    def add_function(self, name: str, fn: types.FunctionType, source: str) -> None:
        self.done.add(id(fn))
        self.units.append(Unit(source, name))
        for ref in _names_read(fn):
            if ref in self.header or not hasattr(fn, "__globals__") or ref not in fn.__globals__:
                continue
            value = fn.__globals__[ref]
            if isinstance(value, types.FunctionType):
                if id(value) in self.done:
                    continue
                mine = value.__module__ == fn.__module__  # a helper of the learner's
                line = None if mine else _import_source(ref, value)
                if line is None and value.__name__ == ref:
                    # One without source is left out: calling it fails in the child, and says so.
                    with contextlib.suppress(ValueError):
                        self.add_function(ref, value, function_source(value))
                    continue
            elif getattr(builtins, ref, None) is value:
                continue
            else:
                line = _import_source(ref, value) or _literal_source(ref, value)
            if line:
                self.header[ref] = line

    def program(self) -> Program:
        head = Unit("".join(self.header.values()), "imports") if self.header else None
        return Program("<notebook>", ([head] if head else []) + self.units)

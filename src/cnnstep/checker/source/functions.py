"""A program built from live function objects (a notebook's), for
:func:`cnnstep.checker.check_functions`.

The learner's function objects are not called here. Their *source* is taken with
:mod:`inspect` (a notebook cell's source included), with what it needs from the notebook's
namespace written back as source too: the modules it uses (``import numpy as np``), the helper
functions of the learner's that it calls, and plain constants. That program is then checked
exactly as ``cnnstep check`` checks a file, in the same sandboxed child.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import inspect
import math
import sys
import textwrap
import types
from typing import Any

from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.source.loader import Program, Unit, parse_unit

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


def _literal_source(name: str, value: Any) -> str | None:
    """``name = <value>`` when ``value`` is a plain constant that reads back equal."""
    if not isinstance(value, (*_LITERALS, tuple, list, dict)):
        return None
    try:
        text = repr(value)
        if len(text) > 10_000 or ast.literal_eval(text) != value:
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
        source = textwrap.dedent(inspect.getsource(fn))
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
    return source


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

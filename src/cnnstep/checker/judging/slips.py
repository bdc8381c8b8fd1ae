"""Slips read from the learner's source: patterns in a failing function's syntax tree (and, for
the template, its comment lines) that name the cause more precisely than the wrong values can.

Nothing here runs learner code: it reads the parsed ``ast`` of the function, which the parent
already has. The hints are only asked for when the function has failed a case, so a pattern
that is harmless in a passing function is never reported.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from cnnstep.checker.i18n import N_
from cnnstep.checker.i18n import gettext as _
from cnnstep.checker.judging.window_slips import Where, assigns, code, names, window_hint

# NumPy names that current NumPy no longer has -> what to write instead.
REMOVED_NUMPY = {
    "asscalar": "`x.item()`", "float": N_("the builtin `float`"), "int": N_("the builtin `int`"),
    "bool": N_("the builtin `bool`"), "object": N_("the builtin `object`"),
    "complex": N_("the builtin `complex`"), "str": N_("the builtin `str`"),
    "long": N_("the builtin `int`"), "unicode": N_("the builtin `str`"),
    "float_": "`np.float64`", "complex_": "`np.complex128`",
    "NaN": "`np.nan`", "NAN": "`np.nan`", "Inf": "`np.inf`", "Infinity": "`np.inf`",
    "PINF": "`np.inf`", "NINF": "`-np.inf`", "infty": "`np.inf`", "product": "`np.prod`",
    "cumproduct": "`np.cumprod`", "alltrue": "`np.all`", "sometrue": "`np.any`",
    "rank": "`np.ndim`", "msort": "`np.sort(a, axis=0)`", "round_": "`np.round`",
    "in1d": "`np.isin`", "string_": "`np.bytes_`", "unicode_": "`np.str_`",
    "bool8": "`np.bool_`", "int0": "`np.intp`", "uint0": "`np.uintp`", "mat": "`np.asmatrix`",
    "trapz": "`np.trapezoid`", "row_stack": "`np.vstack`",
    "asfarray": "`np.asarray(a, dtype=float)`",
}
_REMOVED_MESSAGE = re.compile(r"module 'numpy' has no attribute '(\w+)'|`np\.(\w+)` was removed")

# The course's markers around the learner's part, English and Spanish versions.
_START = re.compile(r"START CODE HERE|YOUR CODE STARTS HERE|"
                    r"(EMPIEZA|COMIENZA|INICIO DEL?) (TU |EL )?C[OÓ]DIGO", re.IGNORECASE)
_END = re.compile(r"END CODE HERE|YOUR CODE ENDS HERE|(TERMINA|FIN DEL?) (TU |EL )?C[OÓ]DIGO",
                  re.IGNORECASE)
_BLANK = re.compile(r"^(#.*|pass|\(?\w+(\s*,\s*\w+)*\)?\s*=\s*None)?$")

HYPERPARAMETERS = {"conv_forward": ("stride", "pad"), "conv_backward": ("stride", "pad"),
                   "pool_forward": ("f", "stride"), "pool_backward": ("f", "stride")}
# Names of the per-example arrays, lower-cased: a constant first index into one of them
# pins every example to the same one.
_BATCH_ARRAYS = {"a_prev", "a_prev_pad", "da_prev", "da_prev_pad", "dz", "da", "z", "a", "x"}

def removed_numpy_hint(message: str) -> str | None:
    """The replacement for a NumPy name that an AttributeError says no longer exists."""
    match = _REMOVED_MESSAGE.search(message)
    if not match:
        return None
    alias = match.group(1) or match.group(2)
    if alias not in REMOVED_NUMPY:
        return None
    return _("`np.{alias}` no longer exists in current NumPy (it was removed): use {instead} "
             "instead").format(alias=alias, instead=_(REMOVED_NUMPY[alias]))


def untouched_template(fn_node: ast.AST | None, lines: list[str]) -> bool:
    """Whether the function is still the course template: it has ``START CODE HERE`` /
    ``YOUR CODE STARTS HERE`` markers and nothing but comments, blanks, ``pass`` and
    ``name = None`` placeholders between each start marker and its end marker."""
    if fn_node is None or not lines:
        return False
    first = getattr(fn_node, "lineno", 1) - 1
    last = getattr(fn_node, "end_lineno", None) or first + 1
    body = lines[first:last]
    regions = 0
    inside = False
    for line in body:
        text = line.strip()
        if _START.search(text):
            inside, regions = True, regions + 1
            continue
        if _END.search(text):
            inside = False
            continue
        if inside and not _BLANK.match(text):
            return False
    return regions > 0


def _bound(fn_node: ast.AST) -> set[str]:
    """Names the function binds: its parameters and every assignment or loop target."""
    bound = set()
    if isinstance(fn_node, ast.FunctionDef | ast.AsyncFunctionDef):
        bound |= {a.arg for a in fn_node.args.args + fn_node.args.kwonlyargs}
    for node in ast.walk(fn_node):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    return bound


def _layout_hint(fn_node: ast.AST, where: Where) -> str | None:
    for node in ast.walk(fn_node):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Tuple)
                and isinstance(node.value, ast.Attribute) and node.value.attr == "shape"):
            continue
        names = [e.id if isinstance(e, ast.Name) else "" for e in node.targets[0].elts]
        channels_second = len(names) == 4 and names[1].startswith("n_C")
        torch_weights = len(names) == 4 and names[0].startswith("n_C") and names[3] == "f"
        if channels_second or torch_weights:
            return _("`{code}` ({where}) reads the shape channels-first; the material's arrays "
                     "are channels-last: A_prev is (m, n_H_prev, n_W_prev, n_C_prev) and W is "
                     "(f, f, n_C_prev, n_C)").format(code=code(node), where=where(node.lineno))
    return None


def _example_hint(fn_node: ast.AST, where: Where) -> str | None:
    for node in ast.walk(fn_node):
        if not (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                and isinstance(node.value, ast.Name)
                and node.value.id.lower() in _BATCH_ARRAYS):
            continue
        first = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) and node.slice.elts \
            else node.slice
        if isinstance(first, ast.Constant) and type(first.value) is int:
            return _("`{code}` ({where}) always takes example {index}: index by the loop "
                     "variable over the examples (`i`)").format(
                code=code(node), where=where(node.lineno), index=first.value)
    return None


def _gradient_start_hint(fn_node: ast.AST, where: Where) -> str | None:
    for node, name in assigns(fn_node):
        call = node.value
        if not (name.startswith("d") and isinstance(call, ast.Call)):
            continue
        text = ast.unparse(call.func)
        if ".random." in f".{text}." or text.split(".")[-1] in ("empty", "empty_like"):
            return _("`{code}` ({where}): a gradient is a sum of contributions, so it must "
                     "start from zeros (`np.zeros(...)`), not from random or uninitialised "
                     "numbers").format(code=code(node), where=where(node.lineno))
    return None


def _hyperparameter_hint(function: str, fn_node: ast.AST) -> str | None:
    keys = {n.value for n in ast.walk(fn_node) if isinstance(n, ast.Constant)}
    bound, used = _bound(fn_node), names(fn_node)
    for key in HYPERPARAMETERS.get(function, ()):
        if key in keys or key in bound:
            continue
        read = f'`{key} = hparameters["{key}"]`'
        if key in used:
            return _("`{key}` is used but never set inside {function}: read it from the "
                     "hyperparameters first, {read}").format(key=key, function=function,
                                                             read=read)
        if key == "stride":
            return _('it never reads `hparameters["stride"]`, so the stride is ignored and '
                     "only stride-1 cases can pass: {read}, then use it for the window corners "
                     "and the output size").format(read=read)
    return None


def float_size_hint(fn_node: ast.AST | None, where: Where) -> str:
    """For "'float' object cannot be interpreted as an integer": the size computed with ``/``."""
    text = _("a size or an index is a float: `/` always gives a float, and NumPy needs "
             "integers: use `//` (or `int(...)`)")
    if fn_node is None:
        return text
    for node, name in assigns(fn_node):
        value = node.value
        wrapped = isinstance(value, ast.Call) and ast.unparse(value.func) in (
            "int", "np.floor", "math.floor", "np.int64", "round")
        if not wrapped and any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)
                               for n in ast.walk(value)):
            return _("`{code}` ({where}) makes {name} a float (`/` always gives a float), and "
                     "NumPy needs integer sizes: use `//` (or `int(...)`)").format(
                code=code(node), where=where(node.lineno), name=name)
    return text


def source_hint(function: str, fn_node: ast.AST | None, where: Where) -> str | None:
    """The slip a failing function's source shows, or None."""
    if fn_node is None:
        return None
    finders: list[Callable[[], str | None]] = [
        lambda: _layout_hint(fn_node, where),
        lambda: _hyperparameter_hint(function, fn_node),
        lambda: _example_hint(fn_node, where),
        lambda: _gradient_start_hint(fn_node, where),
    ]
    finders.append(lambda: window_hint(function, fn_node, where))
    for find in finders:
        hint = find()
        if hint:
            return hint
    return None

"""Slips read from the source of the functions that slide a window (the convolution and pooling
passes): the corners, the window's size and slice, the loops, the padding, the filter of each
channel, and the output size. Each pattern reads the function's parsed ``ast`` only
(:mod:`cnnstep.checker.judging.slips` asks for them once the function has failed a case).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator

from cnnstep.checker.i18n import gettext as _

WINDOWED = ("conv_forward", "pool_forward", "conv_backward", "pool_backward")
Where = Callable[[int], str]


def names(node: ast.AST) -> set[str]:
    """Every name read or written under ``node``."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def assigns(fn_node: ast.AST) -> Iterator[tuple[ast.Assign, str]]:
    """Every ``name = value`` in the function, with the target's name."""
    for node in ast.walk(fn_node):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            yield node, node.targets[0].id


def code(node: ast.AST) -> str:
    """The source of ``node``, cut at 120 characters."""
    return ast.unparse(node)[:120]


def _full(node: ast.AST) -> bool:
    return isinstance(node, ast.Slice) and node.lower is None and node.upper is None \
        and node.step is None


def _corner_hint(fn_node: ast.AST, where: Where) -> str | None:
    for node, name in assigns(fn_node):
        low, used = name.lower(), names(node.value)
        if "end" in low and ("vert" in low or "horiz" in low) and "stride" in used \
                and "f" not in used:
            return _("`{code}` ({where}): a window is f x f, so it ends f after its corner: "
                     "`vert_end = vert_start + f`, `horiz_end = horiz_start + f`").format(
                code=code(node), where=where(node.lineno))
        if "start" not in low:
            continue
        if "f" in used and "stride" not in used:
            return _("`{code}` ({where}): the window corners move by the stride, not by the "
                     "window size f: `vert_start = h * stride`, `horiz_start = w * stride`"
                     ).format(code=code(node), where=where(node.lineno))
        if "horiz" in low and "h" in used and "w" not in used:
            return _("`{code}` ({where}): the horizontal corner comes from the column index w "
                     "(`horiz_start = w * stride`), not from h").format(
                code=code(node), where=where(node.lineno))
        if "vert" in low and "w" in used and "h" not in used:
            return _("`{code}` ({where}): the vertical corner comes from the row index h "
                     "(`vert_start = h * stride`), not from w").format(
                code=code(node), where=where(node.lineno))
    return None


def _size_hint(function: str, fn_node: ast.AST, where: Where) -> str | None:
    for node, name in assigns(fn_node):
        used = names(node.value)
        for mine, other in (("n_W", "n_H"), ("n_H", "n_W")):
            if name == mine and f"{other}_prev" in used and f"{mine}_prev" not in used:
                return _("height and width are mixed up: `{code}` ({where}) computes {mine} "
                         "from {other}_prev; it comes from {mine}_prev").format(
                    code=code(node), where=where(node.lineno), mine=mine, other=other)
        if function == "conv_forward" and name in ("n_H", "n_W") and "pad" in used and not any(
                isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult)
                and "pad" in names(n) for n in ast.walk(node.value)):
            return _("`{code}` ({where}): padding adds pad rows (and columns) on both sides, so "
                     "the output size is `(n_H_prev - f + 2 * pad) // stride + 1`").format(
                code=code(node), where=where(node.lineno))
    return None


def _window_parts(value: ast.Subscript) -> tuple[ast.AST, ast.AST, ast.AST] | None:
    """The rows, columns and channels of a window slice ``x[(i,) rows, cols, channels]``."""
    if not isinstance(value.slice, ast.Tuple) or len(value.slice.elts) not in (3, 4):
        return None
    elts = value.slice.elts
    return (elts[1], elts[2], elts[3]) if len(elts) == 4 else (elts[0], elts[1], elts[2])


def _unpadded(fn_node: ast.AST) -> set[str]:
    """``A_prev`` and the names assigned from it as it is (``a_prev = A_prev[i]``)."""
    found = {"A_prev"}
    for node, name in assigns(fn_node):
        value = node.value
        base = value.value if isinstance(value, ast.Subscript) else value
        if isinstance(base, ast.Name) and base.id == "A_prev":
            found.add(name)
    return found


def _slice_hint(function: str, fn_node: ast.AST, where: Where) -> str | None:
    for node, name in assigns(fn_node):
        value = node.value
        if "slice" not in name.lower() or not isinstance(value, ast.Subscript) or \
                not isinstance(value.value, ast.Name) or "a_prev" not in value.value.id.lower():
            continue
        parts = _window_parts(value)
        if parts is None:
            continue
        rows, cols, channels = parts
        if _full(rows) and _full(cols):
            return _("`{code}` ({where}) takes the whole channel, not the f x f window: slice "
                     "rows `vert_start:vert_end` and columns `horiz_start:horiz_end`").format(
                code=code(node), where=where(node.lineno))
        if function.startswith("pool") and _full(channels):
            return _("`{code}` ({where}) takes every channel (`:`): pooling works on one "
                     "channel at a time, so index the last axis by c").format(
                code=code(node), where=where(node.lineno))
        if function.startswith("conv") and isinstance(channels, ast.Name | ast.Constant):
            return _("`{code}` ({where}) takes one channel of the input: a convolution window "
                     "takes all of them (`:`); c chooses the filter, `W[:, :, :, c]`").format(
                code=code(node), where=where(node.lineno))
        if function.startswith("conv") and value.value.id in _unpadded(fn_node):
            return _("`{code}` ({where}) slices the input before padding: the windows are "
                     "read from the padded input, `A_prev_pad` (`a_prev_pad`)").format(
                code=code(node), where=where(node.lineno))
    return None


def _loop_hint(fn_node: ast.AST, where: Where) -> str | None:
    for node in ast.walk(fn_node):
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Call) and \
                ast.unparse(node.iter.func) == "range" and len(node.iter.args) == 1 and \
                isinstance(node.iter.args[0], ast.Name) and \
                node.iter.args[0].id in ("n_H_prev", "n_W_prev"):
            size = node.iter.args[0].id
            return _("`for ... in range({size})` ({where}) loops over the input's positions; "
                     "there is one window per output position: `range({out})`").format(
                size=size, where=where(node.lineno), out=size[:-5])
    return None


def _padding_hint(function: str, fn_node: ast.AST, where: Where) -> str | None:
    if function not in ("conv_forward", "conv_backward"):
        return None
    for node, name in assigns(fn_node):
        value = node.value
        base = value.value if isinstance(value, ast.Subscript) else value
        if "pad" in name.lower() and isinstance(base, ast.Name) and \
                base.id.lower() in ("a_prev", "da_prev"):
            return _("`{code}` ({where}) takes the input as it is, unpadded: pad it first, "
                     "`A_prev_pad = zero_pad(A_prev, pad)`, and take `A_prev_pad[i]`").format(
                code=code(node), where=where(node.lineno))
    return None


def _filter_hint(function: str, fn_node: ast.AST, where: Where) -> str | None:
    if function != "conv_forward":
        return None
    for node in ast.walk(fn_node):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "conv_single_step" and \
                any(isinstance(a, ast.Name) and a.id in ("W", "b") for a in node.args):
            return _("`{code}` ({where}) gives conv_single_step every filter: give it the filter "
                     "of output channel c, `W[:, :, :, c]` and `b[:, :, :, c]`").format(
                code=code(node), where=where(node.lineno))
    return None


def _gradient_index_hint(fn_node: ast.AST, where: Where) -> str | None:
    for node in ast.walk(fn_node):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and \
                node.value.id in ("dZ", "dA") and isinstance(node.ctx, ast.Load) and \
                any("start" in n.lower() for n in names(node.slice)):
            return _("`{code}` ({where}) reads the gradient at the window's corner; the "
                     "gradient of the output is indexed by the output position: "
                     "`{name}[i, h, w, c]`").format(code=code(node), where=where(node.lineno),
                                                    name=node.value.id)
    return None


def _window_shape_hint(function: str, fn_node: ast.AST, where: Where) -> str | None:
    if function != "pool_backward":
        return None
    for node in ast.walk(fn_node):
        if isinstance(node, ast.Tuple) and len(node.elts) == 2 and \
                [ast.unparse(e) for e in node.elts] == ["n_H", "n_W"]:
            return _("`{code}` ({where}): the average's gradient is spread over one window, "
                     "whose shape is `(f, f)`, not the output's (n_H, n_W)").format(
                code=code(node), where=where(node.lineno))
    return None


def window_hint(function: str, fn_node: ast.AST, where: Where) -> str | None:
    """The slip a failing windowed function's source shows, or None."""
    if function not in WINDOWED:
        return None
    finders: list[Callable[[], str | None]] = [
        lambda: _corner_hint(fn_node, where),
        lambda: _padding_hint(function, fn_node, where),
        lambda: _slice_hint(function, fn_node, where),
        lambda: _size_hint(function, fn_node, where),
        lambda: _filter_hint(function, fn_node, where),
        lambda: _loop_hint(fn_node, where),
        lambda: _gradient_index_hint(fn_node, where),
        lambda: _window_shape_hint(function, fn_node, where),
    ]
    for find in finders:
        hint = find()
        if hint:
            return hint
    return None

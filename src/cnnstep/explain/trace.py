"""Traces: one step per output cell, recorded while the reference loops
(:mod:`cnnstep.ops.reference`) run, through their step hook: the loops a trace shows are the
ones a learner reads, written once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnstep.ops import reference
from cnnstep.ops.checks import check_pool_mode
from cnnstep.ops.geometry import (
    WindowGeometry,
    as_array,
    conv_geometry,
    explicit_pad,
    pool_geometry,
)

# Above this many steps an animation stops being something a learner can follow.
MAX_STEPS = 2000


@dataclass(frozen=True)
class Step:
    """One output cell: where its window lies and the value computed there.

    ``vert_start``/``horiz_start`` are corners on the *padded* input (the course's notation);
    ``vert_end``/``horiz_end`` are exclusive.
    """

    example: int
    row: int
    column: int
    channel: int
    vert_start: int
    vert_end: int
    horiz_start: int
    horiz_end: int
    value: float


@dataclass
class Trace:
    """What an operation did, step by step.

    Attributes
    ----------
    operation : name of the traced function
    geometry : the ops' window geometry (kernel, stride, dilation, pad, sizes)
    input : ndarray of shape (m, n_H_prev, n_W_prev, n_C_prev), as given
    padded : ndarray, the input after padding
    output : ndarray of shape (m, n_H, n_W, n_C), assembled from the steps
    steps : list of Step, in loop order (example, row, column, channel)
    extras : other results by name (``dW`` and ``db`` of conv_backward)
    """

    operation: str
    geometry: WindowGeometry
    input: np.ndarray
    padded: np.ndarray
    output: np.ndarray
    steps: list[Step] = field(default_factory=list)
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.steps)

    def _repr_html_(self) -> str:
        # Jupyter's hook; the page's renderer is imported here to keep trace.py free of HTML.
        from cnnstep.explain.html import render_html_fragment

        return render_html_fragment(self, element_id=f"cnnstep-trace-{id(self)}")


def corners(geom: WindowGeometry, h: int, w: int) -> tuple[int, int, int, int]:
    """``(vert_start, vert_end, horiz_start, horiz_end)`` of output cell ``(h, w)``'s window on
    the padded input (ends exclusive)."""
    (s_h, s_w), (e_h, e_w) = geom.stride, geom.extent
    return h * s_h, h * s_h + e_h, w * s_w, w * s_w + e_w


def recorder(geom: WindowGeometry,
             steps: list[Step]) -> Callable[[int, int, int, int, float], None]:
    """A step hook for the reference loops that appends each step, with its window, to
    ``steps``."""
    def on_step(i: int, h: int, w: int, c: int, value: float) -> None:
        steps.append(Step(i, h, w, c, *corners(geom, h, w), float(value)))
    return on_step


def check_size(n: int, func: str) -> None:
    if n > MAX_STEPS:
        raise ValueError(
            f"{func}: {n} steps is too many to follow step by step (at most {MAX_STEPS}); "
            f"use a smaller input, fewer filters or a larger stride"
        )


def conv_forward(A_prev: Any, W: Any, b: Any, hparameters: Any) -> Trace:
    """Trace ``conv_forward``: one step per cell of Z.

    Parameters
    ----------
    A_prev : array of shape (m, n_H_prev, n_W_prev, n_C_prev)
    W : array of shape (f_h, f_w, n_C_prev, n_C)
    b : array of shape (1, 1, 1, n_C)
    hparameters : dict with "stride", "pad" and optionally "dilation"
    """
    func = "explain.conv_forward"
    A_prev = as_array(A_prev, "A_prev", func)
    W = as_array(W, "W", func)
    b = as_array(b, "b", func)
    geom = conv_geometry(A_prev, W, b, hparameters, func)
    n_H, n_W = geom.out_hw
    check_size(A_prev.shape[0] * n_H * n_W * W.shape[3], func)
    steps: list[Step] = []
    Z, _ = reference.conv_forward(A_prev, W, b, hparameters, on_step=recorder(geom, steps))
    padded = np.pad(A_prev, ((0, 0), *geom.pad, (0, 0)))
    return Trace("conv_forward", geom, A_prev, padded, Z, steps)


def pool_forward(A_prev: Any, hparameters: Any, mode: str = "max") -> Trace:
    """Trace ``pool_forward``: one step per cell of A; padded cells never count.

    Parameters
    ----------
    A_prev : array of shape (m, n_H_prev, n_W_prev, n_C)
    hparameters : dict with "f", "stride" and optionally "pad"
    mode : "max" or "average"
    """
    func = "explain.pool_forward"
    A_prev = as_array(A_prev, "A_prev", func)
    mode = check_pool_mode(mode, func)
    geom = pool_geometry(A_prev, hparameters, func)
    n_H, n_W = geom.out_hw
    check_size(A_prev.shape[0] * n_H * n_W * A_prev.shape[3], func)
    steps: list[Step] = []
    A, _ = reference.pool_forward(A_prev, hparameters, mode, on_step=recorder(geom, steps))
    padded = np.pad(A_prev, ((0, 0), *geom.pad, (0, 0)))
    return Trace(f"pool_forward ({mode})", geom, A_prev, padded, A, steps)


def zero_pad(X: Any, pad: Any) -> Trace:
    """Trace ``zero_pad``: one step per input cell, copied to its place inside the zero frame.

    Parameters
    ----------
    X : array of shape (m, n_H, n_W, n_C)
    pad : int, (pad_h, pad_w) or ((top, bottom), (left, right))

    Returns
    -------
    Trace whose output is X_pad (m, n_H + top + bottom, n_W + left + right, n_C); each step's
    corners are the one cell it fills in X_pad.
    """
    func = "explain.zero_pad"
    X = as_array(X, "X", func, ndim=4)
    pads = explicit_pad(pad, "pad", func)
    check_size(X.size, func)
    steps: list[Step] = []
    (top, _), (left, _) = pads

    def on_step(i: int, h: int, w: int, c: int, value: float) -> None:
        steps.append(Step(i, h, w, c, h + top, h + top + 1, w + left, w + left + 1, float(value)))

    X_pad = reference.zero_pad(X, pads, on_step=on_step)
    geom = WindowGeometry((1, 1), (1, 1), (1, 1), pads, X.shape[1:3], X_pad.shape[1:3])
    return Trace("zero_pad", geom, X, X_pad, X_pad, steps)

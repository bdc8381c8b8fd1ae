"""Traces: one step per output cell, computed by running the operation window by window."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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
    (s_h, s_w), (e_h, e_w) = geom.stride, geom.extent
    return h * s_h, h * s_h + e_h, w * s_w, w * s_w + e_w


def each_window(geom: WindowGeometry, m: int,
                n_C: int) -> Iterator[tuple[int, int, int, int, int, int, int, int]]:
    """``(i, h, w, c, vert_start, vert_end, horiz_start, horiz_end)`` for every output cell, in
    the order of the material's four nested loops (corners on the padded input)."""
    n_H, n_W = geom.out_hw
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                vs, ve, hs, he = corners(geom, h, w)
                for c in range(n_C):
                    yield i, h, w, c, vs, ve, hs, he


def real_cells(geom: WindowGeometry) -> np.ndarray:
    """True on the cells of the padded input that are real, False on the padding."""
    return np.pad(np.ones(geom.in_hw, dtype=bool), geom.pad)


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
    m, n_C = A_prev.shape[0], W.shape[3]
    n_H, n_W = geom.out_hw
    check_size(m * n_H * n_W * n_C, func)
    padded = np.pad(A_prev, ((0, 0), *geom.pad, (0, 0)))
    d_h, d_w = geom.dilation
    Z = np.zeros((m, n_H, n_W, n_C), dtype=np.result_type(A_prev, W, b, np.float32))
    trace = Trace("conv_forward", geom, A_prev, padded, Z)
    bias = b.reshape(-1)
    for i, h, w, c, vs, ve, hs, he in each_window(geom, m, n_C):
        a_slice = padded[i, vs:ve:d_h, hs:he:d_w, :]
        value = np.sum(a_slice * W[..., c]) + bias[c]
        Z[i, h, w, c] = value
        trace.steps.append(Step(i, h, w, c, vs, ve, hs, he, float(value)))
    return trace


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
    m, n_C = A_prev.shape[0], A_prev.shape[3]
    n_H, n_W = geom.out_hw
    check_size(m * n_H * n_W * n_C, func)
    padded = np.pad(A_prev, ((0, 0), *geom.pad, (0, 0)))
    real = real_cells(geom)
    A = np.zeros((m, n_H, n_W, n_C), dtype=np.result_type(A_prev, np.float32))
    trace = Trace(f"pool_forward ({mode})", geom, A_prev, padded, A)
    for i, h, w, c, vs, ve, hs, he in each_window(geom, m, n_C):
        cells = padded[i, vs:ve, hs:he, c][real[vs:ve, hs:he]]
        value = cells.max() if mode == "max" else cells.mean()
        A[i, h, w, c] = value
        trace.steps.append(Step(i, h, w, c, vs, ve, hs, he, float(value)))
    return trace


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
    m, n_H, n_W, n_C = X.shape
    check_size(X.size, func)
    (top, bottom), (left, right) = pads
    X_pad = np.zeros((m, n_H + top + bottom, n_W + left + right, n_C), dtype=X.dtype)
    geom = WindowGeometry((1, 1), (1, 1), (1, 1), pads, (n_H, n_W), X_pad.shape[1:3])
    trace = Trace("zero_pad", geom, X, X_pad, X_pad)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    X_pad[i, h + top, w + left, c] = X[i, h, w, c]
                    trace.steps.append(Step(i, h, w, c, h + top, h + top + 1, w + left,
                                            w + left + 1, float(X[i, h, w, c])))
    return trace

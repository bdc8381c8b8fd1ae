"""Traces of the backward passes: one step per cell of the incoming gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.explain.trace import Step, Trace, check_size, each_window, real_cells
from cnnstep.ops.checks import check_pool_mode
from cnnstep.ops.geometry import as_array, conv_geometry, pool_geometry


def conv_backward(dZ: Any, cache: Any) -> Trace:
    """Trace ``conv_backward``: each dZ cell adds ``W * dZ`` into dA_prev's window and
    ``a_slice * dZ`` into dW.

    Parameters
    ----------
    dZ : array of shape (m, n_H, n_W, n_C)
    cache : (A_prev, W, b, hparameters) as returned by ``conv_forward``

    Returns
    -------
    Trace whose output is dA_prev (m, n_H_prev, n_W_prev, n_C_prev), extras ``dW``, ``db``;
    each step's value is the dZ cell routed back.
    """
    func = "explain.conv_backward"
    A_prev, W, b, hparameters = cache
    A_prev, W, b = (as_array(x, n, func) for x, n in ((A_prev, "A_prev"), (W, "W"), (b, "b")))
    dZ = as_array(dZ, "dZ", func)
    geom = conv_geometry(A_prev, W, b, hparameters, func)
    m, n_C = A_prev.shape[0], W.shape[3]
    n_H, n_W = geom.out_hw
    if dZ.shape != (m, n_H, n_W, n_C):
        raise ValueError(f"{func}: dZ must have shape {(m, n_H, n_W, n_C)}, got {dZ.shape}")
    check_size(dZ.size, func)
    padded = np.pad(A_prev, ((0, 0), *geom.pad, (0, 0)))
    dA_pad = np.zeros(padded.shape, dtype=np.result_type(padded, W, dZ))
    dW = np.zeros(W.shape, dtype=dA_pad.dtype)
    d_h, d_w = geom.dilation
    trace = Trace("conv_backward", geom, A_prev, padded, dA_pad)
    for i, h, w, c, vs, ve, hs, he in each_window(geom, m, n_C):
        g = dZ[i, h, w, c]
        dA_pad[i, vs:ve:d_h, hs:he:d_w, :] += W[..., c] * g
        dW[..., c] += padded[i, vs:ve:d_h, hs:he:d_w, :] * g
        trace.steps.append(Step(i, h, w, c, vs, ve, hs, he, float(g)))
    (top, _), (left, _) = geom.pad
    n_Hp, n_Wp = geom.in_hw
    trace.output = dA_pad[:, top:top + n_Hp, left:left + n_Wp, :]
    trace.extras = {"dA_prev_padded": dA_pad, "dW": dW,
                    "db": dZ.sum(axis=(0, 1, 2)).reshape(1, 1, 1, n_C)}
    return trace


def pool_backward(dA: Any, cache: Any, mode: str = "max") -> Trace:
    """Trace ``pool_backward``: max routes each dA cell to its window's maximum (the mask),
    average spreads it evenly over the window's real cells; overlapping windows add up.

    Parameters
    ----------
    dA : array of shape (m, n_H, n_W, n_C)
    cache : (A_prev, hparameters) as returned by ``pool_forward``
    mode : "max" or "average"
    """
    func = "explain.pool_backward"
    A_prev, hparameters = cache
    A_prev = as_array(A_prev, "A_prev", func)
    dA = as_array(dA, "dA", func)
    mode = check_pool_mode(mode, func)
    geom = pool_geometry(A_prev, hparameters, func)
    m, n_C = A_prev.shape[0], A_prev.shape[3]
    n_H, n_W = geom.out_hw
    if dA.shape != (m, n_H, n_W, n_C):
        raise ValueError(f"{func}: dA must have shape {(m, n_H, n_W, n_C)}, got {dA.shape}")
    check_size(dA.size, func)
    padded = np.pad(A_prev, ((0, 0), *geom.pad, (0, 0)))
    real = real_cells(geom)
    d_pad = np.zeros(padded.shape, dtype=np.result_type(padded, dA))
    trace = Trace(f"pool_backward ({mode})", geom, A_prev, padded, d_pad)
    for i, h, w, c, vs, ve, hs, he in each_window(geom, m, n_C):
        g = dA[i, h, w, c]
        keep = real[vs:ve, hs:he]
        window = padded[i, vs:ve, hs:he, c]
        # max: the window's maximum gets it all (the mask); average: every real cell a share
        share = (keep & (window == window[keep].max())) if mode == "max" else keep / keep.sum()
        d_pad[i, vs:ve, hs:he, c] += share * g
        trace.steps.append(Step(i, h, w, c, vs, ve, hs, he, float(g)))
    (top, _), (left, _) = geom.pad
    n_Hp, n_Wp = geom.in_hw
    trace.output = d_pad[:, top:top + n_Hp, left:left + n_Wp, :]
    trace.extras = {"dA_prev_padded": d_pad}
    return trace

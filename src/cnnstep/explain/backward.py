"""Traces of the backward passes: one step per cell of the incoming gradient, recorded while the
reference loops (:mod:`cnnstep.ops.reference`) run, through their step hook."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.explain.trace import Step, Trace, check_size, recorder
from cnnstep.ops import reference
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
    n_H, n_W = geom.out_hw
    want = (A_prev.shape[0], n_H, n_W, W.shape[3])
    if dZ.shape != want:
        raise ValueError(f"{func}: dZ must have shape {want}, got {dZ.shape}")
    check_size(dZ.size, func)
    steps: list[Step] = []
    dA_prev, dW, db = reference.conv_backward(dZ, (A_prev, W, b, hparameters),
                                              on_step=recorder(geom, steps))
    padded = np.pad(A_prev, ((0, 0), *geom.pad, (0, 0)))
    return Trace("conv_backward", geom, A_prev, padded, dA_prev, steps, {"dW": dW, "db": db})


def pool_backward(dA: Any, cache: Any, mode: str = "max") -> Trace:
    """Trace ``pool_backward``: max routes each dA cell to its window's maximum (the mask: the
    first maximum when several tie), average spreads it evenly over the window's real cells;
    overlapping windows add up.

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
    n_H, n_W = geom.out_hw
    want = (A_prev.shape[0], n_H, n_W, A_prev.shape[3])
    if dA.shape != want:
        raise ValueError(f"{func}: dA must have shape {want}, got {dA.shape}")
    check_size(dA.size, func)
    steps: list[Step] = []
    dA_prev = reference.pool_backward(dA, (A_prev, hparameters), mode,
                                      on_step=recorder(geom, steps))
    padded = np.pad(A_prev, ((0, 0), *geom.pad, (0, 0)))
    return Trace(f"pool_backward ({mode})", geom, A_prev, padded, dA_prev, steps)

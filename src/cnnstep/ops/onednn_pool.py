"""Max pooling from oneDNN (the ``onednn`` extra), for :class:`cnnstep.nn.layers.pool.MaxPool2D`.

With the convolutions on oneDNN (:mod:`cnnstep.ops.onednn`), NumPy's max pooling became the
largest part of a training step of the default model: 64x28x28x16 2x2 took 1.2 ms forward
(the maxima and each maximum's tap, :mod:`cnnstep.ops.pool_taps`) and 0.5-1.0 ms backward;
oneDNN's pooling takes 0.14 and 0.19 ms, and keeps the maximum's position in a workspace of its
own for the backward pass.

The same numbers as :func:`cnnstep.ops.pool.pool_forward` and ``pool_backward``: the maximum
of the window's real cells (padding never wins), its gradient to the window's first maximum,
overlapping windows adding up (property-tested, ties included). One difference is handled
here: oneDNN's comparisons skip NaN, where cnnstep's maximum is NaN, so an input holding a NaN
(one ``np.max`` over it, about 0.05 ms, says so) runs on NumPy. So does everything else this
does not cover: not :func:`cnnstep.ops.onednn.enabled`, not float32, less work than
:data:`cnnstep.ops.onednn.MIN_WORK`. (No window lies wholly in padding: the geometry checks
refuse a pad as large as the window.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.ops import dnnl_api as dn
from cnnstep.ops.geometry import WindowGeometry, as_array, pool_geometry, unpack_cache
from cnnstep.ops.onednn import MIN_WORK, cached, enabled
from cnnstep.ops.threads import op_threads


class PoolPrimitives(dn.Owned):
    """One max-pooling geometry's oneDNN primitives: forward (training, with its workspace)
    and backward, made on first use."""

    def __init__(self, api: dn.Api, x_shape: tuple[int, ...], geom: WindowGeometry) -> None:
        super().__init__(api)
        m, H, W, n_C = x_shape
        (t, b), (lt, rt) = geom.pad
        self.src = self.desc((m, n_C, H, W), dn.TAG_NHWC)
        self.dst = self.desc((m, n_C, *geom.out_hw), dn.TAG_NHWC)
        self.geo = (dn.dims(geom.stride), dn.dims(geom.kernel), dn.dims((0, 0)),
                    dn.dims((t, lt)), dn.dims((b, rt)))
        self.fwd_pd = self.pd("pooling_forward", dn.FORWARD_TRAINING, dn.POOLING_MAX, self.src,
                              self.dst, *self.geo, None)
        self.fwd = self.primitive(self.fwd_pd)
        self.ws = api.query_md(self.fwd_pd, dn.QUERY_WORKSPACE_MD)
        self.ws_bytes = api.size(self.ws)
        self._bwd: Any = None

    def backward(self) -> Any:
        if self._bwd is None:
            pd = self.pd("pooling_backward", dn.POOLING_MAX, self.src, self.dst, *self.geo,
                         self.fwd_pd, None)
            self._bwd = self.primitive(pd)
        return self._bwd


def _primitives(A: np.ndarray, geom: WindowGeometry, threads: int) -> PoolPrimitives | None:
    if (A.dtype != np.float32 or A.shape[0] == 0 or geom.dilation != (1, 1)
            or A.size * geom.kernel[0] * geom.kernel[1] < MIN_WORK or not enabled()):
        return None
    prims: PoolPrimitives | None = cached(("max pool", A.shape, geom, threads),
                                          lambda api: PoolPrimitives(api, A.shape, geom))
    return prims


def max_pool_forward_dnnl(
    A_prev: Any, hparameters: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`cnnstep.ops.pool.pool_forward` (max) from oneDNN, with the workspace its backward
    pass needs, or ``None`` where it does not apply (see the module's docstring).

    A_prev (m, n_H_prev, n_W_prev, n_C) float32; returns ``(A, workspace)``: A (m, n_H, n_W,
    n_C) float32 and a uint8 array for :func:`max_pool_backward_dnnl`.
    """
    A_in = as_array(A_prev, "A_prev", "pool_forward")
    geom = pool_geometry(A_in, hparameters, "pool_forward")
    threads = op_threads()
    prims = _primitives(A_in, geom, threads)
    if prims is None:
        return None
    x = np.ascontiguousarray(A_in)
    if np.isnan(np.max(x)):  # oneDNN skips NaN; cnnstep's maximum is NaN there
        return None
    A = np.empty((x.shape[0], *geom.out_hw, x.shape[3]), dtype=np.float32)
    workspace = np.empty(prims.ws_bytes, dtype=np.uint8)
    prims.api.execute(prims.fwd, [(dn.ARG_SRC, prims.src, x), (dn.ARG_DST, prims.dst, A),
                                  (dn.ARG_WORKSPACE, prims.ws, workspace)], threads)
    return A, workspace


def max_pool_backward_dnnl(dA: Any, cache: Any, workspace: np.ndarray) -> np.ndarray | None:
    """:func:`cnnstep.ops.pool.pool_backward` (max) from oneDNN, given the workspace of
    :func:`max_pool_forward_dnnl` for this cache, or ``None`` where it does not apply (``dA``
    not float32 or of another shape than the output, or the kernels turned off since).

    dA (m, n_H, n_W, n_C); cache ``(A_prev, hparameters)``; returns dA_prev (m, n_H_prev,
    n_W_prev, n_C) float32: each window's gradient at its first maximum, 0 elsewhere.
    """
    A_prev, hparameters = unpack_cache(cache, ("A_prev", "hparameters"), "pool_forward",
                                       "pool_backward")
    A_in = as_array(A_prev, "A_prev", "pool_backward")
    geom = pool_geometry(A_in, hparameters, "pool_backward")
    dA = np.asarray(dA)
    threads = op_threads()
    prims = _primitives(A_in, geom, threads)
    if (prims is None or dA.dtype != np.float32 or dA.shape != (A_in.shape[0], *geom.out_hw,
                                                                 A_in.shape[3])
            or not isinstance(workspace, np.ndarray) or workspace.dtype != np.uint8
            or workspace.size != prims.ws_bytes):
        return None
    try:
        backward = prims.backward()
    except dn.DnnlError:
        return None
    if not prims.fast:
        return None
    dA_prev = np.empty(A_in.shape, dtype=np.float32)
    prims.api.execute(backward, [(dn.ARG_DIFF_DST, prims.dst, np.ascontiguousarray(dA)),
                                 (dn.ARG_WORKSPACE, prims.ws, workspace),
                                 (dn.ARG_DIFF_SRC, prims.src, dA_prev)], threads)
    return dA_prev

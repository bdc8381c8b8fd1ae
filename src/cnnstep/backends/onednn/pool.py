"""Max pooling from oneDNN (the ``onednn`` extra), for the layers' float32 passes.

With the convolutions on oneDNN (:mod:`cnnstep.backends.onednn.conv`), NumPy's max pooling
became the largest part of a training step of the default model: 64x28x28x16 2x2 took 1.2 ms
forward (the maxima and each maximum's tap, :mod:`cnnstep.ops.kernels.pool_taps`) and 0.5-1.0
ms backward; oneDNN's pooling takes 0.14 and 0.19 ms, and keeps the maximum's position in a
workspace of its own for the backward pass.

The same numbers as :func:`cnnstep.ops.pool_forward` and ``pool_backward``: the
maximum of the window's real cells (padding never wins), its gradient to the window's first
maximum, overlapping windows adding up (property-tested, ties included). One difference is
handled by :func:`refusal`: oneDNN's comparisons skip NaN, where cnnstep's maximum is NaN, so an
input holding a NaN (one ``np.max`` over it, about 0.05 ms, says so) runs on NumPy. So does
everything else this does not cover: not float32, no dilation, less work than
:data:`cnnstep.backends.onednn.primitives.MIN_WORK`. (No window lies wholly in padding: the
geometry checks refuse a pad as large as the window.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.backends.onednn import api as dn
from cnnstep.backends.onednn import primitives
from cnnstep.ops.geometry import WindowGeometry


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


def refusal(A: np.ndarray, geom: WindowGeometry, mode: str) -> str | None:
    """Why oneDNN does not run this pooling's forward pass, from what is cheap to check, or
    ``None``; geometries it refuses are found when their primitives are made."""
    if mode != "max":
        return "cnnstep uses oneDNN for max pooling only"
    if A.dtype != np.float32:
        return "oneDNN runs float32 only"
    if A.shape[0] == 0:
        return "an empty batch"
    if geom.dilation != (1, 1):
        return "a dilated pooling"
    work = A.size * geom.kernel[0] * geom.kernel[1]
    if not primitives.enough_work(work):
        return f"too little work for a oneDNN call ({work:,} < {primitives.MIN_WORK:,})"
    if np.isnan(np.max(A)):
        return "a NaN in the input (oneDNN's maximum skips NaN, cnnstep's is NaN)"
    return None


def _primitives(api: dn.Api, x_shape: tuple[int, ...], geom: WindowGeometry,
                threads: int) -> tuple[tuple[Any, ...], PoolPrimitives]:
    key = ("max pool", x_shape, geom)
    prims: PoolPrimitives = primitives.cached(key, threads,
                                              lambda a: PoolPrimitives(a, x_shape, geom), api)
    return key, prims


def forward(api: dn.Api, A: np.ndarray, geom: WindowGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling's forward pass from oneDNN, with the workspace its backward pass needs, or
    :class:`~cnnstep.backends.onednn.primitives.RefusedError`.

    A (m, n_H_prev, n_W_prev, n_C) float32 (see :func:`refusal`); returns ``(A_out,
    workspace)``: A_out (m, n_H, n_W, n_C) float32 and a uint8 array for :func:`backward`.
    """
    threads = primitives.threads()
    key, prims = _primitives(api, A.shape, geom, threads)
    api = prims.api  # the engine that made them (there is one, but a primitive needs its own)
    x = np.ascontiguousarray(A)
    out = np.empty((x.shape[0], *geom.out_hw, x.shape[3]), dtype=np.float32)
    workspace = np.empty(prims.ws_bytes, dtype=np.uint8)
    primitives.attempt(key, lambda: api.execute(
        prims.fwd, [(dn.ARG_SRC, prims.src, x), (dn.ARG_DST, prims.dst, out),
                    (dn.ARG_WORKSPACE, prims.ws, workspace)], threads))
    return out, workspace


def backward(api: dn.Api, A: np.ndarray, geom: WindowGeometry, dA: np.ndarray,
             workspace: np.ndarray) -> np.ndarray:
    """Max pooling's backward pass from oneDNN, given the workspace :func:`forward` gave for
    this input, or :class:`~cnnstep.backends.onednn.primitives.RefusedError`.

    A as :func:`forward`; dA (m, n_H, n_W, n_C) float32. Returns dA_prev (m, n_H_prev,
    n_W_prev, n_C) float32: each window's gradient at its first maximum, 0 elsewhere.
    """
    threads = primitives.threads()
    key, prims = _primitives(api, A.shape, geom, threads)
    api = prims.api  # the engine that made them (there is one, but a primitive needs its own)
    if workspace.dtype != np.uint8 or workspace.size != prims.ws_bytes:
        raise primitives.RefusedError("the workspace is not that of this pooling's forward pass")
    bwd_key = ("max pool backward", *key[1:])
    api.set_threads(threads)  # the backward primitive is made on first use
    backward_prim = primitives.attempt(bwd_key, prims.backward)
    dA_prev = np.empty(A.shape, dtype=np.float32)
    primitives.attempt(bwd_key, lambda: api.execute(
        backward_prim, [(dn.ARG_DIFF_DST, prims.dst, np.ascontiguousarray(dA)),
                        (dn.ARG_WORKSPACE, prims.ws, workspace),
                        (dn.ARG_DIFF_SRC, prims.src, dA_prev)], threads))
    return dA_prev

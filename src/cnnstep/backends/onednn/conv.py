"""Convolution kernels from oneDNN (the ``onednn`` extra), for the layers' float32 passes.

At one thread the im2col + BLAS convolution of :mod:`cnnstep.ops.kernels.conv` runs its thin
products below the BLAS peak and copies every window first; oneDNN's direct convolutions (the
kernels behind PyTorch's CPU convolutions) read NHWC arrays in place. Measured at one thread,
64x14x14x16 -> 32 3x3: forward 2.2 -> 1.1 ms, input gradient and parameter gradients 5.0 ->
2.2 ms; a first layer 64x28x28x1 -> 16 3x3, forward and parameter gradients 1.8 -> 0.6 ms.

Called by :mod:`cnnstep.backends.dispatch` only, which decides when (:func:`refusal`): the
functional API (``conv_forward`` ...) stays NumPy, the reference the checker grades against.
Each geometry's primitives are made once per thread and thread count and kept
(:mod:`cnnstep.backends.onednn.primitives`). Results agree with NumPy's kernels up to float32
rounding (sums in another order); NaN and infinities land where the loops of
:mod:`cnnstep.ops.reference` put them (a direct convolution multiplies no padding it does not
read).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnstep.backends.onednn import api as dn
from cnnstep.backends.onednn import primitives
from cnnstep.ops.geometry import WindowGeometry
from cnnstep.ops.kernels.conv_grads import conv_work


class ConvPrimitives(dn.Owned):
    """One convolution geometry's oneDNN primitives (forward, and backward when first asked
    for), with the weight reorders each needs from and to the HWIO layout of ``W``."""

    def __init__(self, api: dn.Api, x_shape: tuple[int, ...], W_shape: tuple[int, ...],
                 geom: WindowGeometry) -> None:
        super().__init__(api)
        m, H, W, n_C_prev = x_shape
        f_h, f_w, _, n_C = W_shape
        (t, b), (lt, rt) = geom.pad
        self.src = self.desc((m, n_C_prev, H, W), dn.TAG_NHWC)
        self.dst = self.desc((m, n_C, *geom.out_hw), dn.TAG_NHWC)
        self.hwio = self.desc((n_C, n_C_prev, f_h, f_w), dn.TAG_HWIO)
        self.bias = self.desc((n_C,), dn.TAG_X)
        self._w_any = self.desc((n_C, n_C_prev, f_h, f_w), dn.TAG_ANY)
        self.geo = (dn.dims(geom.stride), dn.dims(d - 1 for d in geom.dilation),
                    dn.dims((t, lt)), dn.dims((b, rt)))
        self.fwd_pd = self.pd("convolution_forward", dn.FORWARD_TRAINING, dn.CONVOLUTION_DIRECT,
                              self.src, self._w_any, self.bias, self.dst, *self.geo, None)
        self.fwd = self.primitive(self.fwd_pd)
        self.fwd_w = self._weights_in(api.query_md(self.fwd_pd, dn.QUERY_WEIGHTS_MD))
        self.bwd_data: Any = None
        self.bwd_weights: Any = None

    def _weights_in(self, md: Any) -> tuple[Any, Any, int]:
        """``(descriptor, reorder from HWIO or None, float count)`` for weights a primitive
        reads in layout ``md``."""
        same = self.api.same(md, self.hwio)
        return md, (None if same else self.reorder(self.hwio, md)), self.api.size(md) // 4

    def weights(self, W: np.ndarray, spec: tuple[Any, Any, int], threads: int) -> np.ndarray:
        """``W`` (HWIO) in the layout of ``spec``."""
        md, reorder, n = spec
        if reorder is None:
            return W
        out = np.empty(n, dtype=np.float32)
        self.api.execute(reorder, [(dn.ARG_SRC, self.hwio, W), (dn.ARG_DST, md, out)], threads)
        return out

    def backward_data(self) -> tuple[Any, tuple[Any, Any, int]]:
        """``(primitive, weights spec)`` of the input gradient, made on first use."""
        if self.bwd_data is None:
            pd = self.pd("convolution_backward_data", dn.CONVOLUTION_DIRECT, self.src,
                          self._w_any, self.dst, *self.geo, self.fwd_pd, None)
            self.bwd_data = (self.primitive(pd),
                             self._weights_in(self.api.query_md(pd, dn.QUERY_WEIGHTS_MD)))
        return self.bwd_data  # type: ignore[no-any-return]

    def backward_weights(self) -> tuple[Any, Any, Any, int]:
        """``(primitive, diff-weights descriptor, reorder to HWIO or None, float count)`` of the
        parameter gradients, made on first use."""
        if self.bwd_weights is None:
            pd = self.pd("convolution_backward_weights", dn.CONVOLUTION_DIRECT, self.src,
                          self._w_any, self.bias, self.dst, *self.geo, self.fwd_pd, None)
            md = self.api.query_md(pd, dn.QUERY_DIFF_WEIGHTS_MD)
            same = self.api.same(md, self.hwio)
            self.bwd_weights = (self.primitive(pd), md,
                                None if same else self.reorder(md, self.hwio),
                                self.api.size(md) // 4)
        return self.bwd_weights  # type: ignore[no-any-return]


def refusal(geom: WindowGeometry, x: np.ndarray, W: np.ndarray, b: np.ndarray) -> str | None:
    """Why oneDNN does not run a convolution of ``x`` with ``W`` and ``b``, from what is cheap
    to check (dtypes, size, the weights' values), or ``None``; geometries it refuses are found
    when their primitives are made."""
    if any(a.dtype != np.float32 for a in (x, W, b)):
        return "oneDNN runs float32 only"
    if x.shape[0] == 0:
        return "an empty batch"
    if not (np.isfinite(W).all() and np.isfinite(b).all()):
        # its input gradient multiplies the weights with padding (inf * 0 is NaN) where the
        # loops multiply nothing
        return "weights that are not finite"
    work = conv_work(geom, x.shape[0], W.shape)
    if not primitives.enough_work(work):
        return f"too little work for a oneDNN call ({work:,} < {primitives.MIN_WORK:,})"
    return None


def key_of(x_shape: tuple[int, ...], W_shape: tuple[int, ...],
           geom: WindowGeometry) -> tuple[Any, ...]:
    """What a convolution's primitives are made for (the thread count aside)."""
    return ("conv", x_shape, W_shape, geom)


def _primitives(api: dn.Api, key: tuple[Any, ...], threads: int) -> ConvPrimitives:
    _, x_shape, W_shape, geom = key
    prims: ConvPrimitives = primitives.cached(
        key, threads, lambda a: ConvPrimitives(a, x_shape, W_shape, geom), api)
    return prims


def forward(api: dn.Api, A: np.ndarray, W: np.ndarray, b: np.ndarray,
            geom: WindowGeometry) -> np.ndarray:
    """``Z`` of :func:`cnnstep.ops.conv_forward`, from oneDNN, or
    :class:`~cnnstep.backends.onednn.primitives.RefusedError`.

    A (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev, n_C), b (1, 1, 1, n_C), all
    float32 (see :func:`refusal`); returns Z (m, n_H, n_W, n_C), float32.
    """
    threads = primitives.threads()
    key = key_of(A.shape, W.shape, geom)
    prims = _primitives(api, key, threads)
    api = prims.api  # the engine that made them (there is one, but a primitive needs its own)
    x, W_c = np.ascontiguousarray(A), np.ascontiguousarray(W)
    bias = np.ascontiguousarray(b.reshape(-1))
    Z = np.empty((x.shape[0], *geom.out_hw, W.shape[3]), dtype=np.float32)

    def run() -> None:
        w = prims.weights(W_c, prims.fwd_w, threads)
        api.execute(prims.fwd, [(dn.ARG_SRC, prims.src, x), (dn.ARG_WEIGHTS, prims.fwd_w[0], w),
                                (dn.ARG_BIAS, prims.bias, bias), (dn.ARG_DST, prims.dst, Z)],
                    threads)

    primitives.attempt(key, run)
    return Z


def backward(api: dn.Api, A: np.ndarray, W: np.ndarray, geom: WindowGeometry, dZ: np.ndarray,
             need_dA_prev: bool) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """:func:`cnnstep.ops.kernels.conv_grads.conv_grads` from oneDNN: ``(dA_prev or None, dW,
    db)``, or :class:`~cnnstep.backends.onednn.primitives.RefusedError` (the backward pass of this
    geometry is then NumPy's for good; its forward pass stays on oneDNN).

    A, W as :func:`forward`; dZ (m, n_H, n_W, n_C) float32. Returns dA_prev (m, n_H_prev,
    n_W_prev, n_C_prev) (``None`` without ``need_dA_prev``), dW (f_h, f_w, n_C_prev, n_C) and db
    (1, 1, 1, n_C), float32. Input cells that no window reads get a zero gradient.
    """
    threads = primitives.threads()
    key = key_of(A.shape, W.shape, geom)
    prims = _primitives(api, key, threads)
    api = prims.api  # the engine that made them (there is one, but a primitive needs its own)
    api.set_threads(threads)  # the backward primitives are made on first use
    weights_key, data_key = ("conv backward weights", *key[1:]), ("conv backward data", *key[1:])
    bwd_w = primitives.attempt(weights_key, prims.backward_weights)
    bwd_d = primitives.attempt(data_key, prims.backward_data) if need_dA_prev else None
    x, dz = np.ascontiguousarray(A), np.ascontiguousarray(dZ)
    n_C = W.shape[3]
    dA = None if bwd_d is None else np.empty(x.shape, dtype=np.float32)
    dW = np.empty(W.shape, dtype=np.float32)
    db = np.empty(n_C, dtype=np.float32)

    def run_data(prim: Any, spec: tuple[Any, Any, int], out: np.ndarray) -> None:
        w = prims.weights(np.ascontiguousarray(W), spec, threads)
        api.execute(prim, [(dn.ARG_DIFF_DST, prims.dst, dz), (dn.ARG_WEIGHTS, spec[0], w),
                           (dn.ARG_DIFF_SRC, prims.src, out)], threads)

    def run_weights() -> None:
        prim, md, reorder, n = bwd_w
        dW_out = dW if reorder is None else np.empty(n, dtype=np.float32)
        api.execute(prim, [(dn.ARG_SRC, prims.src, x), (dn.ARG_DIFF_DST, prims.dst, dz),
                           (dn.ARG_DIFF_WEIGHTS, md, dW_out), (dn.ARG_DIFF_BIAS, prims.bias, db)],
                    threads)
        if reorder is not None:
            api.execute(reorder, [(dn.ARG_SRC, md, dW_out), (dn.ARG_DST, prims.hwio, dW)],
                        threads)

    if bwd_d is not None and dA is not None:
        prim_d, spec_d = bwd_d
        primitives.attempt(data_key, lambda: run_data(prim_d, spec_d, dA))
    primitives.attempt(weights_key, run_weights)
    return dA, dW, db.reshape(1, 1, 1, n_C)

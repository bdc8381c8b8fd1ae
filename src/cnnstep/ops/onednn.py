"""Convolution kernels from oneDNN (the ``onednn`` extra), for the layers' float32 passes.

At one thread the im2col + BLAS convolution of :mod:`cnnstep.ops.conv` runs its thin products
below the BLAS peak and copies every window first; oneDNN's direct convolutions (the kernels
behind PyTorch's CPU convolutions) read NHWC arrays in place. Measured at one thread,
64x14x14x16 -> 32 3x3: forward 2.2 -> 1.1 ms, input gradient and parameter gradients 5.0 ->
2.2 ms; a first layer 64x28x28x1 -> 16 3x3, forward and parameter gradients 1.8 -> 0.6 ms.

Used by :class:`cnnstep.nn.layers.conv.Conv2D` only: the functional API (``conv_forward`` ...)
stays NumPy, the reference the checker grades against. Each geometry's primitives are made
once per thread and thread count (oneDNN runs a primitive in the thread that made it, and splits
its work for the count it was made with) and kept, least recently used dropped first. With
:func:`cnnstep.ops.set_num_threads` above 1 a convolution runs a GNU OpenMP team, after which a
``fork`` without ``exec`` can hang in the child (cnnstep's own workers are started afresh, and at
1 thread no team starts). Float32 only, and only while :func:`enabled`: the extra is installed and
loads, and neither :func:`set_enabled` nor ``CNNSTEP_ONEDNN=0`` turned it off. Where oneDNN
offers only its reference implementation for a geometry, the NumPy ops run instead. Results
agree with the NumPy path up to float32 rounding (sums in another order).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnstep.ops import dnnl_api as dn
from cnnstep.ops.conv_grads import conv_work
from cnnstep.ops.geometry import WindowGeometry, unpack_cache
from cnnstep.ops.im2col import conv_inputs
from cnnstep.ops.threads import op_threads

#: Geometries whose primitives each thread keeps.
CACHE_SIZE = 32
#: Below this much work (output cells x taps x channels in and out) the NumPy ops run: a call
#: costs some 20 microseconds of ctypes and descriptors, more than tiny convolutions take.
MIN_WORK = 20_000

_state: dict[str, Any] = {"enabled": os.environ.get("CNNSTEP_ONEDNN", "1") != "0"}
_local = threading.local()


def available() -> bool:
    """Whether the ``onednn`` extra is installed and its library loads."""
    return dn.api() is not None


def status() -> str:
    """``"on"``, ``"off (CNNSTEP_ONEDNN=0 or set_enabled(False))"`` or why it is not
    available (not installed, or the library would not load)."""
    loaded = dn.library()
    if isinstance(loaded, str):
        return loaded
    return "on" if _state["enabled"] else "off (CNNSTEP_ONEDNN=0 or set_enabled(False))"


def enabled() -> bool:
    """Whether the layers use oneDNN's kernels (available, and not turned off)."""
    return bool(_state["enabled"]) and available()


def set_enabled(flag: bool) -> None:
    """Turn oneDNN's kernels on or off for this process (``CNNSTEP_ONEDNN=0``: off from the
    start). Off, the layers run the NumPy ops, exactly as without the extra."""
    if not isinstance(flag, bool):
        raise TypeError(f"flag: expected True or False, got {flag!r}")
    _state["enabled"] = flag


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


def cached(key: tuple[Any, ...], make: Callable[[dn.Api], dn.Owned]) -> Any:
    """This thread's primitives for ``key``, made by ``make(api)`` on first use and kept (least
    recently used dropped first); ``None`` where oneDNN refuses them or offers only its
    reference implementation. ``key`` should hold the thread count: a primitive splits its
    work for the count it was made with, which is set here before ``make`` runs."""
    cache: OrderedDict[Any, dn.Owned | None] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    api = dn.api()
    prims: dn.Owned | None = None
    if api is not None:
        api.set_threads(key[-1])
        try:
            prims = make(api)
        except dn.DnnlError:
            prims = None
    cache[key] = prims if prims is None or prims.fast else None
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)
    return cache[key]


def _primitives(x_shape: tuple[int, ...], W_shape: tuple[int, ...], geom: WindowGeometry,
                threads: int) -> ConvPrimitives | None:
    """This thread's convolution primitives of a geometry for ``threads`` threads."""
    prims: ConvPrimitives | None = cached(
        ("conv", x_shape, W_shape, geom, threads),
        lambda api: ConvPrimitives(api, x_shape, W_shape, geom))
    return prims


def _usable(geom: WindowGeometry, m: int, W_shape: tuple[int, ...], *arrays: np.ndarray) -> bool:
    # cheap checks first: enabled() loads the library on its first call
    return (m > 0 and conv_work(geom, m, W_shape) >= MIN_WORK
            and all(a.dtype == np.float32 for a in arrays) and enabled())


def conv_forward_dnnl(
    A_prev: Any, W: Any, b: Any, hparameters: dict[str, Any]
) -> np.ndarray | None:
    """:func:`cnnstep.ops.conv.conv_forward`'s ``Z`` from oneDNN, or ``None`` where it does not
    apply (not :func:`enabled`, not float32 throughout, less work than :data:`MIN_WORK`, or a
    geometry oneDNN has no fast kernel for).

    A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev, n_C), b (1, 1, 1, n_C);
    returns Z (m, n_H, n_W, n_C), float32.
    """
    A_in, W_, b_, geom, _ = conv_inputs(A_prev, W, b, hparameters, "conv_forward")
    if not _usable(geom, A_in.shape[0], W_.shape, A_in, W_, b_):
        return None
    threads = op_threads()
    prims = _primitives(A_in.shape, W_.shape, geom, threads)
    if prims is None:
        return None
    x, W_c = np.ascontiguousarray(A_in), np.ascontiguousarray(W_)
    bias = np.ascontiguousarray(b_.reshape(-1))
    Z = np.empty((x.shape[0], *geom.out_hw, W_.shape[3]), dtype=np.float32)
    w = prims.weights(W_c, prims.fwd_w, threads)
    prims.api.execute(prims.fwd, [(dn.ARG_SRC, prims.src, x), (dn.ARG_WEIGHTS, prims.fwd_w[0], w),
                                  (dn.ARG_BIAS, prims.bias, bias), (dn.ARG_DST, prims.dst, Z)],
                      threads)
    return Z


def conv_grads_dnnl(
    dZ: np.ndarray, cache: Any, need_dA_prev: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray] | None:
    """:func:`cnnstep.ops.conv_grads.conv_grads` from oneDNN: ``(dA_prev or None, dW, db)``, or
    ``None`` where it does not apply (as :func:`conv_forward_dnnl`).

    dZ (m, n_H, n_W, n_C); cache ``(A_prev, W, b, hparameters)`` of the forward pass; returns
    dA_prev (m, n_H_prev, n_W_prev, n_C_prev) (``None`` without ``need_dA_prev``),
    dW (f_h, f_w, n_C_prev, n_C) and db (1, 1, 1, n_C), float32. Input cells that no window
    reads get a zero gradient, as in the NumPy ops.
    """
    A_prev, W, b, hparameters = unpack_cache(
        cache, ("A_prev", "W", "b", "hparameters"), "conv_forward", "conv_backward")
    A_in, W_, _, geom, _ = conv_inputs(A_prev, W, b, hparameters, "conv_backward")
    dZ = np.asarray(dZ)
    m, n_C = A_in.shape[0], W_.shape[3]
    if (not _usable(geom, m, W_.shape, A_in, W_, dZ) or dZ.shape != (m, *geom.out_hw, n_C)):
        return None
    threads = op_threads()
    prims = _primitives(A_in.shape, W_.shape, geom, threads)
    if prims is None:
        return None
    prims.api.set_threads(threads)  # the backward primitives are made on first use
    try:
        bwd_w = prims.backward_weights()
        bwd_d = prims.backward_data() if need_dA_prev else None
    except dn.DnnlError:  # a backward pass oneDNN refuses: NumPy's, from now on
        prims.fast = False
    if not prims.fast:  # or one only oneDNN's reference implementation offers
        return None
    api = prims.api
    x, dz = np.ascontiguousarray(A_in), np.ascontiguousarray(dZ)
    dA = None
    if bwd_d is not None:
        prim, spec = bwd_d
        w = prims.weights(np.ascontiguousarray(W_), spec, threads)
        dA = np.empty(x.shape, dtype=np.float32)
        api.execute(prim, [(dn.ARG_DIFF_DST, prims.dst, dz), (dn.ARG_WEIGHTS, spec[0], w),
                           (dn.ARG_DIFF_SRC, prims.src, dA)], threads)
    prim, md, reorder, n = bwd_w
    dW = np.empty(W_.shape, dtype=np.float32)
    db = np.empty(n_C, dtype=np.float32)
    dW_out = dW if reorder is None else np.empty(n, dtype=np.float32)
    api.execute(prim, [(dn.ARG_SRC, prims.src, x), (dn.ARG_DIFF_DST, prims.dst, dz),
                       (dn.ARG_DIFF_WEIGHTS, md, dW_out), (dn.ARG_DIFF_BIAS, prims.bias, db)],
                threads)
    if reorder is not None:
        api.execute(reorder, [(dn.ARG_SRC, md, dW_out), (dn.ARG_DST, prims.hwio, dW)], threads)
    return dA, dW, db.reshape(1, 1, 1, n_C)

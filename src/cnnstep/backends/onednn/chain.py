"""A run of layers for inference in one go on oneDNN: convolutions (with ReLU as a post-op where
a ReLU follows), poolings, and a last inner product (a ``Dense`` after ``Flatten``).

Between the steps the activations stay in the layouts oneDNN picks for its fastest kernels
(blocks of 8 channels on AVX2), which the layer-by-layer passes cannot keep: each of those
reads and writes NHWC arrays. Only the first step reads NHWC (the caller's images, in place) and
only the last writes the caller's layout (the logits, or NHWC), so a chain does no reorder of its
activations at all when it ends in a ``Dense``. Its primitives are made for inference
(``forward_inference``: no workspace for pooling), for one batch size and one thread: a batch
splits into chunks of one size, run side by side by the caller's threads, each with its own
primitives (:mod:`cnnstep.backends.onednn.primitives`) and buffers, reused from chunk to chunk
and from call to call. The weights are reordered into the primitives' layouts once per call
(:meth:`ChainPrimitives.load`), so a model trained between two calls is read afresh.

Called by :mod:`cnnstep.backends.inference` only, which decides when (finite inputs that cannot
overflow, float32, the library there): oneDNN's ReLU and max pooling treat NaN otherwise than
cnnstep's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from cnnstep.backends.onednn import api as dn
from cnnstep.ops.geometry import WindowGeometry

#: Bytes each buffer is aligned to (a cache line: oneDNN's kernels load whole lines).
ALIGN = 64

#: A convolution's implementation run instead of oneDNN's first choice, where oneDNN offers it.
#: On AVX2 without AVX-512, oneDNN 3.2's brgemm kernel ran the default model's second
#: convolution (16 -> 32 channels, 3x3 on 14x14, chunks of 64, ReLU fused) 8-10 % slower than
#: its direct ``jit:avx2`` kernel (paired runs, 2-core AMD EPYC); the SIGNS model's were even.
PREFERRED = {"brgconv:avx2": "jit:avx2"}


class ConvSpec(NamedTuple):
    """A convolution of a chain: its weights' shape (f_h, f_w, n_C_prev, n_C), geometry and
    whether a ReLU follows (as a post-op)."""

    W_shape: tuple[int, int, int, int]
    geom: WindowGeometry
    relu: bool


class PoolSpec(NamedTuple):
    """A pooling of a chain: its geometry and mode (``"max"`` or ``"average"``)."""

    geom: WindowGeometry
    mode: str


class DenseSpec(NamedTuple):
    """A ``Flatten`` then ``Dense``: ``units`` outputs from the flattened NHWC map."""

    units: int


Spec = ConvSpec | PoolSpec | DenseSpec


def aligned(n: int) -> np.ndarray:
    """An uninitialised float32 buffer of ``n`` values starting on an :data:`ALIGN` boundary."""
    raw = np.empty(n + ALIGN // 4, dtype=np.float32)
    skip = (-raw.ctypes.data % ALIGN) // 4
    return raw[skip:skip + n]


class _Weights(NamedTuple):
    user: Any  # memory object for the caller's array (HWIO / (n_in, units))
    mem: Any  # memory object the primitive reads
    reorder: Any  # primitive, or None when the layouts are the same
    bias: Any  # memory object for the bias


class ChainPrimitives(dn.Owned):
    """One chain's primitives for batches of ``m`` on one thread, with its buffers.

    ``shape`` is one input's (n_H, n_W, n_C). :meth:`load` puts the weights in, :meth:`run`
    runs a batch.
    """

    def __init__(self, api: dn.Api, specs: Sequence[Spec], shape: tuple[int, ...],
                 m: int) -> None:
        super().__init__(api)
        self.m = m
        self._calls: list[tuple[Any, Any, int]] = []
        self._weights: list[_Weights] = []
        self._buffers: list[np.ndarray] = []
        self._held: list[np.ndarray] = []
        self.impls: list[str] = []  # each convolution's implementation, in order
        md = self.desc((m, shape[2], shape[0], shape[1]), dn.TAG_NHWC)
        self.x_mem = mem = self.memory(md, None)
        for spec in specs:
            if isinstance(spec, ConvSpec):
                md, mem, shape = self._conv(spec, md, mem)
            elif isinstance(spec, PoolSpec):
                md, mem, shape = self._pool(spec, md, mem, shape)
            else:
                md, mem, shape = self._dense(spec, md, mem, shape)
        self.out_shape = shape
        self.out_mem = self._output(md, mem, shape)

    def _buffer(self, md: Any) -> tuple[Any, np.ndarray]:
        buf = aligned(self.api.size(md) // 4)
        self._buffers.append(buf)
        return self.memory(md, buf), buf

    def _add(self, prim: Any, args: list[tuple[int, Any]]) -> None:
        packed = (dn.ExecArg * len(args))(*[dn.ExecArg(a, m) for a, m in args])
        self._calls.append((prim, packed, len(args)))

    def _attr(self, relu: bool) -> Any:
        return self.api.relu_attr() if relu else None

    def _conv(self, spec: ConvSpec, src: Any, src_mem: Any) -> tuple[Any, Any, tuple[int, ...]]:
        f_h, f_w, n_C_prev, n_C = spec.W_shape
        g = spec.geom
        (t, b), (lt, rt) = g.pad
        w_any = self.desc((n_C, n_C_prev, f_h, f_w), dn.TAG_ANY)
        bias = self.desc((n_C,), dn.TAG_X)
        dst = self.desc((self.m, n_C, *g.out_hw), dn.TAG_ANY)
        attr = self._attr(spec.relu)
        try:
            pd = self._preferred(dn.FORWARD_INFERENCE, dn.CONVOLUTION_DIRECT, src, w_any, bias,
                                 dst, dn.dims(g.stride), dn.dims(d - 1 for d in g.dilation),
                                 dn.dims((t, lt)), dn.dims((b, rt)), attr)
        finally:
            if attr is not None:
                self.api.destroy("primitive_attr", attr)
        user = self.desc((n_C, n_C_prev, f_h, f_w), dn.TAG_HWIO)
        w = self._weights_for(pd, user, bias)
        dst_md = self.api.query_md(pd, dn.QUERY_DST_MD)
        dst_mem, _ = self._buffer(dst_md)
        self._add(self.primitive(pd), [(dn.ARG_SRC, src_mem), (dn.ARG_WEIGHTS, w.mem),
                                       (dn.ARG_BIAS, w.bias), (dn.ARG_DST, dst_mem)])
        return dst_md, dst_mem, (*g.out_hw, n_C)

    def _preferred(self, *args: Any) -> Any:
        """A convolution's primitive descriptor: oneDNN's first choice, or the implementation
        :data:`PREFERRED` names instead where oneDNN offers it."""
        pd = self.pd("convolution_forward", *args)
        want = PREFERRED.get(self.api.impl(pd))
        if want is not None:
            while self.api.next_impl(pd):
                if self.api.impl(pd) == want:
                    break
            else:  # not offered: the first choice again
                pd = self.pd("convolution_forward", *args)
        self.impls.append(self.api.impl(pd))
        return pd

    def _weights_for(self, pd: Any, user: Any, bias: Any) -> _Weights:
        md = self.api.query_md(pd, dn.QUERY_WEIGHTS_MD)
        user_mem = self.memory(user, None)
        if self.api.same(md, user):
            weights = _Weights(user_mem, user_mem, None, self.memory(bias, None))
        else:
            mem, _ = self._buffer(md)
            weights = _Weights(user_mem, mem, self.reorder(user, md), self.memory(bias, None))
        self._weights.append(weights)
        return weights

    def _pool(self, spec: PoolSpec, src: Any, src_mem: Any,
              shape: tuple[int, ...]) -> tuple[Any, Any, tuple[int, ...]]:
        g = spec.geom
        (t, b), (lt, rt) = g.pad
        dst = self.desc((self.m, shape[2], *g.out_hw), dn.TAG_ANY)
        alg = dn.POOLING_MAX if spec.mode == "max" else dn.POOLING_AVG_EXCLUDE_PADDING
        pd = self.pd("pooling_forward", dn.FORWARD_INFERENCE, alg, src, dst, dn.dims(g.stride),
                     dn.dims(g.kernel), dn.dims((0, 0)), dn.dims((t, lt)), dn.dims((b, rt)),
                     None)
        dst_md = self.api.query_md(pd, dn.QUERY_DST_MD)
        dst_mem, _ = self._buffer(dst_md)
        self._add(self.primitive(pd), [(dn.ARG_SRC, src_mem), (dn.ARG_DST, dst_mem)])
        return dst_md, dst_mem, (*g.out_hw, shape[2])

    def _dense(self, spec: DenseSpec, src: Any, src_mem: Any,
               shape: tuple[int, ...]) -> tuple[Any, Any, tuple[int, ...]]:
        n_H, n_W, n_C = shape
        k = spec.units
        # the Dense's W (n_H * n_W * n_C, units), rows in NHWC order, is the inner product's
        # weights (units, n_C, n_H, n_W) laid out as HWIO
        user = self.desc((k, n_C, n_H, n_W), dn.TAG_HWIO)
        w_any = self.desc((k, n_C, n_H, n_W), dn.TAG_ANY)
        bias = self.desc((k,), dn.TAG_X)
        dst = self.desc((self.m, k), dn.TAG_AB)
        pd = self.pd("inner_product_forward", dn.FORWARD_INFERENCE, src, w_any, bias, dst, None)
        w = self._weights_for(pd, user, bias)
        dst_mem, _ = self._buffer(dst)
        self._add(self.primitive(pd), [(dn.ARG_SRC, src_mem), (dn.ARG_WEIGHTS, w.mem),
                                       (dn.ARG_BIAS, w.bias), (dn.ARG_DST, dst_mem)])
        return dst, dst_mem, (k,)

    def _output(self, md: Any, mem: Any, shape: tuple[int, ...]) -> Any:
        """The memory object the caller's output array is bound to: the last step's own (its
        buffer dropped) when it writes the caller's layout, else a reorder's destination."""
        if len(shape) == 1:
            want = self.desc((self.m, shape[0]), dn.TAG_AB)
        else:
            want = self.desc((self.m, shape[2], shape[0], shape[1]), dn.TAG_NHWC)
        if self.api.same(md, want):
            self._buffers.pop()
            return mem
        out = self.memory(want, None)
        self._add(self.reorder(md, want), [(dn.ARG_SRC, mem), (dn.ARG_DST, out)])
        return out

    def load(self, weights: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        """Put each convolution's and the inner product's ``(W, b)`` (float32, C-contiguous,
        HWIO and ``(n_in, units)``; ``b`` of ``n_C`` values) in, as the primitives read them."""
        api = self.api
        self._held = [a for pair in weights for a in pair]  # alive while the memory points at it
        api.set_threads(1)
        for spec, (W, b) in zip(self._weights, weights):
            api.bind(spec.user, W)
            api.bind(spec.bias, b)
            if spec.reorder is not None:
                args = (dn.ExecArg * 2)(dn.ExecArg(dn.ARG_SRC, spec.user),
                                        dn.ExecArg(dn.ARG_DST, spec.mem))
                api.run(spec.reorder, args, 2)
        api.wait()

    def run(self, x: np.ndarray, out: np.ndarray) -> None:
        """The chain on ``x`` (m, n_H, n_W, n_C) into ``out`` (m, *out_shape), both float32 and
        C-contiguous, after :meth:`load`."""
        api = self.api
        api.set_threads(1)
        api.bind(self.x_mem, x)
        api.bind(self.out_mem, out)
        for prim, args, n in self._calls:
            api.run(prim, args, n)
        api.wait()

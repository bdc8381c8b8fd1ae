"""Inference through a run of layers at once: convolutions (a ReLU after one fused into it),
poolings and a last ``Dense`` after ``Flatten``, on oneDNN where it applies, on NumPy's kernels
elsewhere.

The model (:mod:`cnnstep.nn.inference`) describes a run of its layers as steps (:class:`Conv`,
:class:`Pool`, :class:`Dense`), makes a :class:`Chain` of them once per call (the weights as they
are then) and runs it on chunks of its batch, from one thread or several.

A chunk runs on oneDNN (:mod:`cnnstep.backends.onednn.chain`: one primitive per step, the
activations in oneDNN's blocked layouts between them, buffers kept from chunk to chunk) when the
``backend`` setting is ``"auto"``, the library is there, the arrays are float32, and the chunk's
values cannot become NaN or infinite on the way: the input is finite and no step can overflow
float32 (a bound from the largest input and the weights' absolute sums). The check is one
BLAS pass over the model's whole input (:meth:`Chain.unsafe_values`: the root of the sum of
squares bounds the largest value), made chunk by chunk, exactly, only where that fails.
oneDNN's ReLU and max pooling treat NaN otherwise than cnnstep's, so any other chunk runs on
NumPy, whose results put NaN and infinities where the loops of :mod:`cnnstep.reference` do.
Both give the layer-by-layer results up to float32 rounding (sums in another order). Where
each chunk ran is noted for :func:`cnnstep.backends.status`.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnstep.backends import numpy as numpy_backend
from cnnstep.backends import record
from cnnstep.backends.dispatch import onednn_why_not
from cnnstep.backends.onednn import api as dn
from cnnstep.backends.onednn import library, primitives
from cnnstep.backends.onednn.chain import ChainPrimitives, ConvSpec, DenseSpec, PoolSpec, Spec
from cnnstep.backends.onednn.primitives import RefusedError
from cnnstep.ops.checks import check_pool_mode
from cnnstep.ops.geometry import conv_geometry, pool_geometry

ONEDNN = "onednn"
#: The largest value any step may reach for a chunk to run on oneDNN: far enough below float32's
#: largest (3.4e38) that no sum in any order overflows.
LIMIT = 1e37


@dataclass(frozen=True, eq=False)
class Conv:
    """A convolution step: ``W`` (f_h, f_w, n_C_prev, n_C), ``b`` (1, 1, 1, n_C), the
    hyperparameters of :func:`cnnstep.ops.conv_forward`, and whether a ReLU follows."""

    W: np.ndarray
    b: np.ndarray
    hparameters: dict[str, Any]
    relu: bool = False


@dataclass(frozen=True, eq=False)
class Pool:
    """A pooling step: the hyperparameters of :func:`cnnstep.ops.pool_forward` and its mode."""

    hparameters: dict[str, Any]
    mode: str = "max"


@dataclass(frozen=True, eq=False)
class Dense:
    """A ``Flatten`` then ``Dense`` step: ``W`` (n_H * n_W * n_C, units), ``b`` (units,); the
    map is flattened in NHWC order. It ends a chain."""

    W: np.ndarray
    b: np.ndarray


Step = Conv | Pool | Dense


def _specs(steps: Sequence[Step], shape: tuple[int, ...]) -> tuple[list[Spec], tuple[int, ...]]:
    """Each step's shapes and geometry (checked as the ops check them), and the output shape."""
    specs: list[Spec] = []
    for step in steps:
        probe = np.empty((0, *shape), dtype=np.float32)
        if isinstance(step, Conv):
            geom = conv_geometry(probe, step.W, step.b, step.hparameters, "Conv2D")
            specs.append(ConvSpec(step.W.shape, geom, step.relu))
            shape = (*geom.out_hw, step.W.shape[3])
        elif isinstance(step, Pool):
            geom = pool_geometry(probe, step.hparameters, "pooling")
            specs.append(PoolSpec(geom, check_pool_mode(step.mode, "pooling")))
            shape = (*geom.out_hw, shape[2])
        else:
            if len(shape) != 3 or step.W.shape[0] != math.prod(shape):
                raise ValueError(f"Dense: W of shape {step.W.shape} does not take a flattened "
                                 f"map of shape {shape}")
            specs.append(DenseSpec(step.W.shape[1]))
            shape = (step.W.shape[1],)
    return specs, shape


def describe(specs: Sequence[Spec]) -> str:
    """``"conv 16 3x3 + relu, max pool 2x2, dense 10"``: a chain, for :func:`status`."""
    words = []
    for s in specs:
        if isinstance(s, ConvSpec):
            k = s.geom.kernel
            words.append(f"conv {s.W_shape[3]} {k[0]}x{k[1]}" + (" + relu" if s.relu else ""))
        elif isinstance(s, PoolSpec):
            words.append(f"{s.mode} pool {s.geom.kernel[0]}x{s.geom.kernel[1]}")
        else:
            words.append(f"dense {s.units}")
    return ", ".join(words)


class Chain:
    """A run of steps on inputs of one ``shape`` (n_H, n_W, n_C) and ``dtype``, with the
    weights as they are when it is made (one call of the model); :meth:`run` runs a chunk."""

    def __init__(self, steps: Sequence[Step], shape: Sequence[int], dtype: Any) -> None:
        self.steps = list(steps)
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.specs, self.out_shape = _specs(self.steps, self.shape)
        self.label = describe(self.specs)
        self.why = self._why_not()
        self._token = object()  # this call's weights: loaded into each thread's primitives once
        # A chain is made per call and thread (:func:`cnnstep.nn.inference.outputs`), so what
        # it keeps from chunk to chunk is that thread's: its loaded primitives by chunk shape
        # (looked up once, not per chunk), and where each shape ran (noted once). Weakly: the
        # primitives live and die in their thread's cache (primitives.cached) only, never later
        # in whatever thread collects a chain caught in a reference cycle.
        self._prims: dict[tuple[int, ...],
                          tuple[tuple[Any, ...], weakref.ref[ChainPrimitives]]] = {}
        self._noted: dict[tuple[int, ...], str] = {}
        self._bounds = self._growth() if self.why is None else []
        # float32 copies for oneDNN, only where it may run (a float64 model never needs them)
        self._weights = [(np.ascontiguousarray(s.W, dtype=np.float32),
                          np.ascontiguousarray(s.b, dtype=np.float32).reshape(-1))
                         for s in self.steps if isinstance(s, Conv | Dense)
                         ] if self.why is None else []

    def _why_not(self) -> str | None:
        return onednn_why_not("oneDNN runs float32 only" if self.dtype != np.float32 else None)

    def _growth(self) -> list[tuple[float, float]]:
        """``(p, q)`` per weighted step: no value after it exceeds ``p * max|x| + q``."""
        p, q, out = 1.0, 0.0, []
        for step in self.steps:
            if isinstance(step, Pool):  # a maximum or a mean of values within the bound
                continue
            W = np.abs(step.W.astype(np.float64).reshape(-1, step.W.shape[-1]))
            n, bias = float(W.sum(axis=0).max(initial=0.0)), float(np.abs(step.b).max())
            p, q = p * n, q * n + bias
            out.append((p, q))
        if not all(math.isfinite(v) for pq in out for v in pq):
            self.why = "weights that are not finite"
        return out

    def unsafe_values(self, x: np.ndarray) -> str | None:
        """Why the values of ``x`` (C-contiguous) may not run on oneDNN (one is or could become
        NaN or infinite), or ``None``; a chunk of an array that passes passes too."""
        # One BLAS pass first: the root of the sum of squares bounds max|x| from above (float32
        # rounding moves it by far less than LIMIT's margin), and is NaN or infinite if any
        # value is. Only a chunk that fails it pays for the exact maximum and minimum.
        flat = x.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):
            squares = float(np.dot(flat, flat))
        if math.isfinite(squares) and self._fits(math.sqrt(squares)):
            return None
        top = max(float(x.max()), -float(x.min()))
        if not math.isfinite(top):  # NaN compares false: not finite either
            return "a NaN or an infinity in the input (oneDNN's ReLU and maximum skip NaN)"
        if not self._fits(top):
            return "values that could overflow float32"
        return None

    def _fits(self, top: float) -> bool:
        """Whether no step can exceed :data:`LIMIT` on inputs of absolute value ``top`` at most."""
        return all(p * top + q <= LIMIT for p, q in self._bounds)

    def run(self, x: np.ndarray, out: np.ndarray, checked: bool = False) -> None:
        """The steps on ``x`` (m, n_H, n_W, n_C) of :attr:`dtype` into ``out`` (m,
        *out_shape), a C-contiguous array of :attr:`dtype`.

        ``checked=True``: ``x`` is part of an array that :meth:`unsafe_values` passed, so its
        values need no check (one pass over a whole input costs less than one per chunk).
        """
        why = self.why
        if why is None and x.shape[0]:
            x = np.ascontiguousarray(x)
            why = None if checked else self.unsafe_values(x)
        if why is None:
            try:
                self._onednn(x, out)
            except RefusedError as exc:
                why = str(exc)
            else:
                self._note(x.shape, ONEDNN)
                return
        self._note(x.shape, f"numpy: {why}")
        self._numpy(x, out)

    def _note(self, shape: tuple[int, ...], where: str) -> None:
        """Note where a chunk of ``shape`` ran, once per shape and place for this chain."""
        if self._noted.get(shape) != where:
            self._noted[shape] = where
            record.note(("inference", shape, None, self.dtype, self.label), where)

    def _onednn(self, x: np.ndarray, out: np.ndarray) -> None:
        known = self._prims.get(x.shape)
        kept = known[1]() if known is not None else None
        if kept is not None:  # this chain ran a chunk of this shape: its primitives, loaded
            try:
                kept.run(x, out)
            except dn.DnnlError as exc:
                key = self._prims.pop(x.shape)[0]
                raise primitives.refuse(key, f"oneDNN refused it: {exc}") from None
            return
        api = library.engine()
        assert not isinstance(api, str)  # _why_not said it is there
        key = (f"chain {self.label}", x.shape, tuple(self.specs))
        made: ChainPrimitives = primitives.cached(
            key, 1, lambda a: ChainPrimitives(a, self.specs, self.shape, x.shape[0]), api)
        if getattr(made, "token", None) is not self._token:
            primitives.attempt(key, lambda: made.load(self._weights))
            made.token = self._token  # type: ignore[attr-defined]
        primitives.attempt(key, lambda: made.run(x, out))
        self._prims[x.shape] = (key, weakref.ref(made))

    def _numpy(self, x: np.ndarray, out: np.ndarray) -> None:
        a = x
        for step in self.steps:
            if isinstance(step, Conv):
                a, _, _ = numpy_backend.conv_pass(a, step.W, step.b, step.hparameters, False)
                if step.relu:
                    np.maximum(a, 0, out=a)
            elif isinstance(step, Pool):
                a = numpy_backend.pool_pass(a, step.hparameters, step.mode, False)[0]
            else:
                a = a.reshape(a.shape[0], -1) @ step.W + step.b
        np.copyto(out, a)

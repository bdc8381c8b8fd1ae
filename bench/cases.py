"""The shapes ``bench/ops.py`` times and what each side runs on them.

:class:`Case` is one shape (its label is what ``--case`` parses back); :data:`SUITE` the shapes
that count for ``bench/ops.py``, :data:`HELD_OUT` shapes kept out of it (``--held-out``: the
NumPy kernels are checked on shapes they were not tuned on), :data:`QUICK` tiny ones for the
smoke test. :func:`cnnstep_step`, :func:`layer_step` and :func:`torch_step` make one forward
plus backward call of each side on a shape's data (:func:`make_data`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import cnnstep
from cnnstep.ops.geometry import resolve_pad


@dataclass(frozen=True)
class Case:
    """One benchmark shape: NHWC ``m x H x W x C``, then ``F`` filters (conv) or a pool mode."""

    kind: str  # "conv", "max", "average"
    m: int
    H: int
    W: int
    C: int
    f: int
    stride: int
    pad: int | str = 0
    F: int = 0

    @property
    def label(self) -> str:
        shape = f"{self.m}x{self.H}x{self.W}x{self.C}"
        pad = f" p{self.pad}" if self.pad else ""
        if self.kind == "conv":
            return f"conv {shape}->{self.F} f{self.f} s{self.stride}{pad}"
        return f"{self.kind} pool {shape} f{self.f} s{self.stride}{pad}"

    def pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        return resolve_pad(self.pad, (self.H, self.W), (self.f, self.f),
                           (self.stride, self.stride), "pad", "bench")

    def out_hw(self) -> tuple[int, int]:
        (t, bt), (lt, r) = self.pads()
        return ((self.H + t + bt - self.f) // self.stride + 1,
                (self.W + lt + r - self.f) // self.stride + 1)

    def flops(self) -> float:
        """Floating-point operations of forward + backward.

        Convolution: 2 per multiply-add, three products of equal size (Z, dW, dA_prev).
        Pooling: one compare or add per window tap, forward and backward.
        """
        n_H, n_W = self.out_hw()
        out = self.m * n_H * n_W
        if self.kind == "conv":
            return 3 * 2.0 * out * self.f * self.f * self.C * self.F
        return 2.0 * out * self.f * self.f * self.C


# The shapes that count (geometric mean, worst). Convolutions with at most 4 input channels are
# the first layers of image models: the default model on MNIST, the course's SIGNS model on
# 64x64x3, one larger RGB image.
SUITE = (
    Case("conv", 64, 28, 28, 1, 5, 1, 2, F=32),
    Case("conv", 64, 28, 28, 1, 3, 1, "same", F=16),
    Case("conv", 64, 64, 64, 3, 4, 1, "same", F=8),
    Case("conv", 1, 128, 128, 3, 3, 1, 1, F=16),
    Case("conv", 32, 32, 32, 3, 5, 1, 2, F=32),
    Case("conv", 64, 14, 14, 16, 3, 1, "same", F=32),
    Case("conv", 64, 8, 8, 8, 2, 1, "same", F=16),
    Case("conv", 64, 32, 32, 16, 3, 1, 1, F=32),
    Case("conv", 32, 16, 16, 64, 3, 1, 1, F=64),
    Case("conv", 16, 56, 56, 64, 3, 1, 1, F=64),
    Case("conv", 64, 32, 32, 32, 3, 2, 1, F=64),
    Case("conv", 64, 32, 32, 64, 1, 1, 0, F=64),
    Case("conv", 1, 56, 56, 64, 3, 1, 1, F=64),
    Case("conv", 8, 4, 4, 256, 3, 1, 1, F=256),
    Case("conv", 32, 15, 15, 32, 3, 2, 0, F=32),
    Case("max", 64, 28, 28, 16, 2, 2),
    Case("max", 64, 32, 32, 32, 2, 2),
    Case("max", 64, 64, 64, 8, 8, 8),
    Case("max", 64, 28, 28, 16, 3, 2, 1),
    Case("average", 64, 28, 28, 16, 3, 1),
    Case("average", 32, 32, 32, 32, 2, 2),
)

# --quick: the same kinds of shape, tiny (the smoke test checks that the benchmark runs).
QUICK = (
    Case("conv", 2, 8, 8, 1, 3, 1, "same", F=4),
    Case("conv", 2, 8, 8, 3, 4, 1, "same", F=4),
    Case("conv", 2, 8, 8, 8, 3, 2, 1, F=8),
    Case("max", 2, 8, 8, 4, 2, 2),
    Case("average", 2, 8, 8, 4, 3, 1),
)


# Shapes outside SUITE (``--held-out``): first layers of other image sizes (the two worst of
# the AVX-512-tuned kernels on OpenBLAS's Haswell kernels among them), strided and 1x1 layers,
# a LeNet first layer, a few small batches. Chosen before the kernels were tuned on this
# machine, and never used to tune them.
HELD_OUT = (
    Case("conv", 8, 96, 96, 3, 5, 2, 2, F=8),
    Case("conv", 32, 48, 48, 3, 3, 1, 1, F=16),
    Case("conv", 16, 28, 28, 1, 5, 1, 0, F=6),
    Case("conv", 16, 40, 40, 8, 3, 1, "same", F=24),
    Case("conv", 32, 20, 20, 24, 3, 2, 1, F=48),
    Case("conv", 64, 12, 12, 48, 1, 1, 0, F=48),
    Case("conv", 4, 72, 72, 16, 5, 1, 2, F=16),
    Case("conv", 128, 10, 10, 32, 3, 1, 0, F=10),
    Case("conv", 24, 30, 30, 12, 7, 3, 3, F=20),
)


def make_data(case: Case, rng: np.random.Generator,
              dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """Standard normal inputs and output gradients, weights scaled by 0.1, in ``dtype``."""
    f32 = np.float32
    data = {"A": rng.standard_normal((case.m, case.H, case.W, case.C), dtype=f32)}
    n_H, n_W = case.out_hw()
    n_C = case.F if case.kind == "conv" else case.C
    data["dout"] = rng.standard_normal((case.m, n_H, n_W, n_C), dtype=f32)
    if case.kind == "conv":
        data["W"] = rng.standard_normal((case.f, case.f, case.C, case.F), dtype=f32) * f32(0.1)
        data["b"] = rng.standard_normal((1, 1, 1, case.F), dtype=f32)
    return {k: v.astype(dtype) for k, v in data.items()}


def parse_case(text: str) -> Case:
    """A :class:`Case` from its table label, e.g. ``"conv 64x14x14x16->32 f3 s1 psame"``."""
    words = text.replace(" pool ", " ").split()
    try:
        kind, shape, *rest = words
        if kind not in ("conv", "max", "average"):
            raise ValueError(kind)
        dims_, _, filters = shape.partition("->")
        if (kind == "conv") != bool(filters):
            raise argparse.ArgumentTypeError(
                f"--case: a convolution needs '->filters', a pooling none: {text!r}")
        m, H, W, C = (int(v) for v in dims_.split("x"))
        opts = {w[0]: w[1:] for w in rest}
        pad: int | str = opts.get("p", "0")
        pad = int(pad) if str(pad).isdigit() else pad
        case = Case(kind, m, H, W, C, int(opts["f"]), int(opts.get("s", "1")), pad,
                    F=int(filters) if kind == "conv" else 0)
        case.out_hw()  # the padding is one resolve_pad accepts
    except (ValueError, KeyError, TypeError) as exc:
        raise argparse.ArgumentTypeError(
            f"--case: expected e.g. 'conv 64x14x14x16->32 f3 s1 psame' or "
            f"'max pool 64x28x28x16 f2 s2', got {text!r} ({exc})") from None
    return case


def layer_step(case: Case, d: dict[str, np.ndarray]) -> Callable[[], object]:
    """A training forward pass and its backward pass through the layer of ``case``."""
    layer: cnnstep.nn.layers.Layer
    if case.kind == "conv":
        layer = cnnstep.Conv2D(case.F, case.f, stride=case.stride, padding=case.pad)
    else:
        cls = cnnstep.MaxPool2D if case.kind == "max" else cnnstep.AvgPool2D
        layer = cls(case.f, case.stride, padding=case.pad)
    layer.build(d["A"].shape[1:], np.random.default_rng(0), d["A"].dtype)
    if case.kind == "conv":
        layer.params["W"][...] = d["W"]
        layer.params["b"][...] = d["b"]

    def step():
        layer.forward(d["A"], training=True)
        return layer.backward(d["dout"])
    return step


def cnnstep_step(case: Case, d: dict[str, np.ndarray]) -> Callable[[], object]:
    if case.kind == "conv":
        hp = {"stride": case.stride, "pad": case.pad}

        def step():
            _, cache = cnnstep.conv_forward(d["A"], d["W"], d["b"], hp)
            return cnnstep.conv_backward(d["dout"], cache)
    else:
        hp = {"f": case.f, "stride": case.stride, "pad": case.pad}

        def step():
            _, cache = cnnstep.pool_forward(d["A"], hp, case.kind)
            return cnnstep.pool_backward(d["dout"], cache, case.kind)
    return step


def torch_step(case: Case, d: dict[str, np.ndarray]) -> Callable[[], object]:
    import torch
    import torch.nn.functional as tf

    x = torch.from_numpy(d["A"].transpose(0, 3, 1, 2).copy()).requires_grad_()
    g = torch.from_numpy(d["dout"].transpose(0, 3, 1, 2).copy())
    (t, bt), (lt, r) = case.pads()
    symmetric = t == bt and lt == r

    def padded(z, value=0.0):
        return z if symmetric else tf.pad(z, (lt, r, t, bt), value=value)

    if case.kind == "conv":
        w = torch.from_numpy(d["W"].transpose(3, 2, 0, 1).copy()).requires_grad_()
        b = torch.from_numpy(d["b"].reshape(-1).copy()).requires_grad_()
        params = (x, w, b)
        pad = (t, lt) if symmetric else 0

        def forward():
            return tf.conv2d(padded(x), w, b, stride=case.stride, padding=pad)
    elif case.kind == "max":
        params = (x,)
        if not symmetric:
            raise ValueError("asymmetric max pooling is not benchmarked")

        def forward():
            return tf.max_pool2d(x, case.f, case.stride, padding=(t, lt))
    else:
        params = (x,)
        if not symmetric:
            raise ValueError("asymmetric average pooling is not benchmarked")

        def forward():
            # count_include_pad=False: divide by real cells, as cnnstep does.
            return tf.avg_pool2d(x, case.f, case.stride, padding=(t, lt),
                                count_include_pad=False)

    def step():
        for p in params:
            p.grad = None
        forward().backward(g)

    return step

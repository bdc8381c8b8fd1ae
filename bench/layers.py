"""Milliseconds of the layers beside Conv2D/pooling/Dense, and of a training step of the course's
``happy`` and ``resnet`` models, against the same computation in PyTorch, float32.

Each layer row is one training-mode forward and backward on the batch shown (the shape is NHWC);
``inference`` rows are a forward alone. A model row is one training step of a batch of 32 images
of 64x64x3 (forward, loss, backward, Adam), on one thread for both libraries. Paired timing
(``bench/paired.py``): each cnnstep call next to the PyTorch call, in alternating order; the
ratio column is the median of the paired ratios (below 1: cnnstep is faster).

Usage::

    PYTHONPATH=src python bench/layers.py [--pairs 30] [--quick]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paired  # noqa: E402  (bench/paired.py, beside this file)

if __name__ == "__main__":
    paired.quiet_idle_threads()  # before NumPy and PyTorch start their thread pools

import argparse  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from cnnstep import (  # noqa: E402
    BatchNorm2D,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    ZeroPadding2D,
    build_architecture,
)
from cnnstep.interop.layout import resolved_pads  # noqa: E402
from cnnstep.nn.optimizers import Adam  # noqa: E402


def twin(layer: Any) -> Any:
    """The PyTorch module of a cnnstep layer (NCHW), with fresh weights: timing only."""
    import torch
    from torch import nn
    from torch.nn import functional

    class Pad(nn.Module):
        def __init__(self, inner: Any, pads: Any, value: float = 0.0) -> None:
            super().__init__()
            (t, b), (lt, r) = pads
            self.inner, self.pad4, self.value = inner, (lt, r, t, b), value

        def forward(self, x: Any) -> Any:
            return self.inner(functional.pad(x, self.pad4, value=self.value))

    class Add(nn.Module):
        def __init__(self, main: Any, short: Any) -> None:
            super().__init__()
            self.main, self.short = main, short

        def forward(self, x: Any) -> Any:
            return self.main(x) + (x if self.short is None else self.short(x))

    if isinstance(layer, Conv2D):
        conv = nn.Conv2d(layer.input_shape[-1], layer.filters, layer.kernel_size, layer.stride,
                         dilation=layer.dilation)
        return Pad(conv, resolved_pads(layer))
    if isinstance(layer, MaxPool2D):
        return Pad(nn.MaxPool2d(layer.pool_size, layer.stride), resolved_pads(layer), -np.inf)
    if isinstance(layer, BatchNorm2D):
        return nn.BatchNorm2d(layer.input_shape[-1], eps=layer.epsilon,
                              momentum=1 - layer.momentum)
    if isinstance(layer, ZeroPadding2D):
        (t, b), (lt, r) = layer.padding
        return nn.ZeroPad2d((lt, r, t, b))
    if isinstance(layer, Residual):
        short = nn.Sequential(*map(twin, layer.shortcut)) if layer.shortcut else None
        return Add(nn.Sequential(*map(twin, layer.main)), short)
    if isinstance(layer, Dense):
        return nn.Linear(layer.params["W"].shape[0], layer.units)
    simple: dict[type, Callable[[], Any]] = {
        ReLU: nn.ReLU, Sigmoid: nn.Sigmoid, Tanh: nn.Tanh, Flatten: nn.Flatten,
        GlobalAvgPool2D: lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        GlobalMaxPool2D: lambda: nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten()),
    }
    if isinstance(layer, LeakyReLU):
        return nn.LeakyReLU(layer.alpha)
    del torch
    return simple[type(layer)]()


def layer_pair(layer: Any, shape: tuple[int, ...], training: bool) -> tuple[Callable, Callable]:
    """cnnstep's and PyTorch's forward (and backward, in training) of ``layer`` on a batch."""
    import torch

    layer.build(shape[1:], np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    out = layer.forward(x, training=training)
    dout = np.ones_like(out)
    mod = twin(layer).train(training)
    tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_(training)
    tdout = torch.ones(tuple(mod(tx).shape))

    def ours() -> None:
        layer.forward(x, training=training)
        if training:
            layer.backward(dout)

    def theirs() -> None:
        if training:
            mod(tx).backward(tdout)
        else:
            with torch.no_grad():
                mod(tx)

    return ours, theirs


def model_pair(name: str) -> tuple[Callable, Callable]:
    """One training step (batch 32, 64x64x3, 2 classes: one sigmoid unit) on each side."""
    import torch

    model = build_architecture(name, (64, 64, 3), 2, seed=0)
    rng = np.random.default_rng(2)
    x = rng.random((32, 64, 64, 3)).astype(np.float32)
    y = rng.integers(0, 2, 32)
    mod = torch.nn.Sequential(*map(twin, model.layers)).train()
    tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    ty = torch.from_numpy(y.astype(np.float32))[:, None]
    ours_opt = Adam(1e-3)
    opt = torch.optim.Adam(mod.parameters(), 1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def ours() -> None:
        model.train_step(x, y, ours_opt)

    def theirs() -> None:
        opt.zero_grad()
        loss_fn(mod(tx), ty).backward()
        opt.step()

    return ours, theirs


LAYERS = [
    ("BatchNorm2D 32x64x64x32 (happy's)", lambda: BatchNorm2D(), (32, 64, 64, 32), True),
    ("BatchNorm2D 32x64x64x32 inference", lambda: BatchNorm2D(), (32, 64, 64, 32), False),
    ("BatchNorm2D 64x16x16x32", lambda: BatchNorm2D(), (64, 16, 16, 32), True),
    ("ZeroPadding2D(3) 32x64x64x3", lambda: ZeroPadding2D(3), (32, 64, 64, 3), True),
    ("GlobalAvgPool2D 64x8x8x64", lambda: GlobalAvgPool2D(), (64, 8, 8, 64), True),
    ("GlobalMaxPool2D 64x8x8x64", lambda: GlobalMaxPool2D(), (64, 8, 8, 64), True),
    ("LeakyReLU 32x32x32x16", lambda: LeakyReLU(0.1), (32, 32, 32, 16), True),
    ("Sigmoid 32x32x32x16", lambda: Sigmoid(), (32, 32, 32, 16), True),
    ("Tanh 32x32x32x16", lambda: Tanh(), (32, 32, 32, 16), True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30, help="timed pairs per row")
    parser.add_argument("--quick", action="store_true", help="3 pairs per row (smoke test)")
    parser.add_argument("--spin", action="store_true",
                        help="keep the libraries' default idle-thread spinning")
    args = parser.parse_args()
    pairs = 3 if args.quick else max(args.pairs, 3)
    paired.header("cnnstep layers and the course's models against PyTorch, float32, 1 thread")
    with paired.threads(1):
        print(paired.table_head("layer, training forward + backward"))
        for label, make, shape, training in LAYERS:
            ours, theirs = layer_pair(make(), shape, training)
            print(paired.row(label, paired.paired_times(ours, theirs, pairs)))
        print(paired.table_head("model, one training step (batch 32)"))
        for name in ("happy", "resnet"):
            ours, theirs = model_pair(name)
            print(paired.row(name, paired.paired_times(ours, theirs, max(3, pairs // 3))))
    print(f"load average at end: {paired.load_average()}")


if __name__ == "__main__":
    main()

"""The PyTorch twin of a cnnstep model: an nn.Sequential with one module per cnnstep layer, fed
NCHW images (the test-side definition of what `layout="torch"` weights fit)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from cnnstep.interop.layout import resolved_pads
from cnnstep.nn.layers import (
    AvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
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
)


def _symmetric(pads):
    (t, b), (left, r) = pads
    return (t, left) if t == b and left == r else None


class PaddedConv2d(nn.Conv2d):
    """nn.Conv2d after an asymmetric zero padding (same state-dict keys as nn.Conv2d)."""

    def __init__(self, *args, pads, **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        (t, b), (left, r) = pads
        self.pad4 = (left, r, t, b)

    def forward(self, x):
        return super().forward(functional.pad(x, self.pad4))


class PaddedPool2d(nn.Module):
    """Pooling over ``kernel`` windows every ``stride`` cells after an asymmetric padding."""

    def __init__(self, kernel, stride, pads):
        super().__init__()
        (t, b), (left, r) = pads
        self.pad4, self.kernel, self.stride = (left, r, t, b), kernel, stride


class PaddedMaxPool2d(PaddedPool2d):
    """Max pooling after an asymmetric -inf padding (a padded cell never wins)."""

    def forward(self, x):
        padded = functional.pad(x, self.pad4, value=-np.inf)
        return functional.max_pool2d(padded, self.kernel, self.stride)


class PaddedAvgPool2d(PaddedPool2d):
    """Average pooling after an asymmetric padding, over the real cells only."""

    def forward(self, x):
        sums = functional.avg_pool2d(functional.pad(x, self.pad4), self.kernel, self.stride)
        ones = functional.pad(torch.ones_like(x[:1, :1]), self.pad4)
        return sums / functional.avg_pool2d(ones, self.kernel, self.stride)


class TwinResidual(nn.Module):
    """``main(x) + shortcut(x)``."""

    def __init__(self, main, shortcut):
        super().__init__()
        self.main, self.shortcut = main, shortcut

    def forward(self, x):
        return self.main(x) + self.shortcut(x)


class TwinGlobalPool(nn.Module):
    def __init__(self, reduce):
        super().__init__()
        self.reduce = reduce

    def forward(self, x):
        return self.reduce(x.flatten(2), dim=2)


def _new_layer_twin(layer):
    """The twins of the layers of issue 23 (batch normalisation, padding, activations, global
    pooling, residual blocks), or None."""
    if isinstance(layer, BatchNorm2D):
        return nn.BatchNorm2d(layer.params["gamma"].shape[0], eps=layer.epsilon,
                              momentum=1 - layer.momentum)
    if isinstance(layer, ZeroPadding2D):
        (t, b), (left, r) = layer.padding
        return nn.ZeroPad2d((left, r, t, b))
    if isinstance(layer, GlobalAvgPool2D):
        return TwinGlobalPool(torch.mean)
    if isinstance(layer, GlobalMaxPool2D):
        return TwinGlobalPool(lambda x, dim: torch.max(x, dim=dim).values)
    if isinstance(layer, Residual):
        def path(layers):
            return torch_twin(type("Layers", (), {"layers": layers}))
        return TwinResidual(path(layer.main), path(layer.shortcut))
    simple = {Sigmoid: nn.Sigmoid, Tanh: nn.Tanh}.get(type(layer))
    if simple is not None:
        return simple()
    if isinstance(layer, LeakyReLU):
        return nn.LeakyReLU(layer.alpha)
    return None


def torch_twin(model) -> nn.Sequential:
    """An nn.Sequential computing what ``model`` computes, on NCHW float32 inputs."""
    mods = []
    for layer in model.layers:
        twin = _new_layer_twin(layer)
        if twin is not None:
            mods.append(twin)
            continue
        if isinstance(layer, Conv2D):
            n_in = layer.params["W"].shape[2]
            pads = resolved_pads(layer)
            sym = _symmetric(pads)
            args = (n_in, layer.filters, layer.kernel_size)
            kw = {"stride": layer.stride, "dilation": layer.dilation}
            mods.append(nn.Conv2d(*args, padding=sym, **kw) if sym is not None
                        else PaddedConv2d(*args, pads=pads, **kw))
        elif isinstance(layer, MaxPool2D):
            pads = resolved_pads(layer)
            sym = _symmetric(pads)
            mods.append(nn.MaxPool2d(layer.pool_size, layer.stride, padding=sym)
                        if sym is not None
                        else PaddedMaxPool2d(layer.pool_size, layer.stride, pads))
        elif isinstance(layer, AvgPool2D):
            pads = resolved_pads(layer)
            sym = _symmetric(pads)
            mods.append(nn.AvgPool2d(layer.pool_size, layer.stride, padding=sym,
                                     count_include_pad=False) if sym is not None
                        else PaddedAvgPool2d(layer.pool_size, layer.stride, pads))
        elif isinstance(layer, ReLU):
            mods.append(nn.ReLU())
        elif isinstance(layer, Dropout):
            mods.append(nn.Dropout(layer.rate))
        elif isinstance(layer, Flatten):
            mods.append(nn.Flatten())
        elif isinstance(layer, Dense):
            mods.append(nn.Linear(layer.params["W"].shape[0], layer.units))
        else:
            raise AssertionError(f"no twin for {layer.name}")
    return nn.Sequential(*mods)


def twin_logits(twin: nn.Sequential, x_nhwc: np.ndarray) -> np.ndarray:
    """The twin's outputs (eval mode) for NHWC images."""
    twin.eval()
    with torch.no_grad():
        return twin(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()

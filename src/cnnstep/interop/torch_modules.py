"""The PyTorch modules of :func:`cnnstep.interop.to_torch`, one small export per layer type.

Imports torch at the top: imported only by :mod:`cnnstep.interop.torch_export` when a model is
exported. Every padding is resolved to explicit numbers that show in ``print(module)``:

- ``Conv2D``: ``nn.Conv2d`` with its symmetric padding, or :class:`PaddedConv2d` (an
  ``nn.Conv2d`` after ``F.pad``; same state-dict keys) when top/bottom or left/right differ.
- ``MaxPool2D``: :class:`PaddedMaxPool2d`: ``F.pad`` with ``-inf`` (a padded cell never wins),
  then an unpadded max pooling.
- ``AvgPool2D``: :class:`PaddedAvgPool2d`: the sums of the zero-padded windows divided by the
  number of real cells in each (as cnnstep; PyTorch's own padding is symmetric only).
- ``ReLU``, ``Dropout``, ``Flatten``, ``Dense``: ``nn.ReLU``, ``nn.Dropout``, ``nn.Flatten``,
  ``nn.Linear``.

The modules compute on NCHW tensors; :class:`NHWCSequential` takes cnnstep's NHWC input and
transposes it once. Adding a layer type is one function registered with :func:`torch_export`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from cnnstep.interop.layout import dense_to_torch, hwio_to_oihw, resolved_pads
from cnnstep.nn.layers import AvgPool2D, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU

#: How each layer type becomes a module: ``export(layer, flattened_image) -> nn.Module``, where
#: ``flattened_image`` is the (n_H, n_W, n_C) a Dense reads through a Flatten, or None.
TORCH_EXPORTS: dict[type[Layer], Callable[[Any, Any], nn.Module]] = {}

Pads = tuple[tuple[int, int], tuple[int, int]]


def torch_export(*types: type[Layer]) -> Callable[[Callable[..., nn.Module]],
                                                  Callable[..., nn.Module]]:
    """Register the decorated function as the PyTorch export of ``types``."""
    def register(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        for t in types:
            TORCH_EXPORTS[t] = fn
        return fn
    return register


def _f_pad(pads: Pads) -> tuple[int, int, int, int]:
    """cnnstep's ``((top, bottom), (left, right))`` as ``F.pad``'s (left, right, top, bottom)."""
    (t, b), (left, r) = pads
    return (left, r, t, b)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, dtype=np.float32))


class PaddedConv2d(nn.Conv2d):
    """``nn.Conv2d`` after a zero padding of ``pads = ((top, bottom), (left, right))``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int], *,
                 stride: tuple[int, int], dilation: tuple[int, int], pads: Pads) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         dilation=dilation)
        self.pads = pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(functional.pad(x, _f_pad(self.pads)))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}"


class PaddedPool2d(nn.Module):
    """Pooling over ``kernel`` windows every ``stride`` cells after explicit ``pads``."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], pads: Pads) -> None:
        super().__init__()
        self.kernel, self.stride, self.pads = kernel, stride, pads

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, pads={self.pads}"


class PaddedMaxPool2d(PaddedPool2d):
    """Max pooling after a ``-inf`` padding: a padded cell never wins."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pads[0]) or any(self.pads[1]):
            x = functional.pad(x, _f_pad(self.pads), value=float("-inf"))
        return functional.max_pool2d(x, self.kernel, self.stride)


class PaddedAvgPool2d(PaddedPool2d):
    """Average pooling after a zero padding, divided by the real cells of each window."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (any(self.pads[0]) or any(self.pads[1])):
            return functional.avg_pool2d(x, self.kernel, self.stride)
        pad = _f_pad(self.pads)
        sums = functional.avg_pool2d(functional.pad(x, pad), self.kernel, self.stride,
                                     divisor_override=1)
        real = functional.pad(torch.ones_like(x[:1, :1]), pad)
        return sums / functional.avg_pool2d(real, self.kernel, self.stride, divisor_override=1)


class NHWCSequential(nn.Sequential):
    """The exported layers (NCHW inside) behind cnnstep's interface: float32 NHWC images in;
    class probabilities (or logits, or an NHWC map for a model without a Flatten) out.

    Its ``state_dict`` keys are ``"<cnnstep layer index>.weight"`` / ``.bias``: the safetensors
    files in PyTorch layout (:func:`cnnstep.interop.save_weights`) load into it as they are.
    """

    def __init__(self, *modules: nn.Module, probabilities: bool) -> None:
        super().__init__(*modules)
        self.probabilities = probabilities

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.permute(0, 3, 1, 2)
        for module in self:
            x = module(x)
        if x.dim() == 4:
            return x.permute(0, 2, 3, 1)
        return torch.softmax(x, dim=1) if self.probabilities else x

    def extra_repr(self) -> str:
        return "input NHWC, " + ("output probabilities" if self.probabilities else "output logits")


@torch_export(Conv2D)
def _conv(layer: Conv2D, image: Any) -> nn.Module:
    pads = resolved_pads(layer)
    (t, b), (left, r) = pads
    n_in, shape = int(layer.params["W"].shape[2]), layer.kernel_size
    conv = nn.Conv2d(n_in, layer.filters, shape, stride=layer.stride, padding=(t, left),
                     dilation=layer.dilation) if (t, left) == (b, r) \
        else PaddedConv2d(n_in, layer.filters, shape, stride=layer.stride,
                          dilation=layer.dilation, pads=pads)
    conv.load_state_dict({"weight": _tensor(hwio_to_oihw(layer.params["W"])),
                          "bias": _tensor(layer.params["b"].reshape(-1))})
    return conv


@torch_export(MaxPool2D)
def _max_pool(layer: MaxPool2D, image: Any) -> nn.Module:
    return PaddedMaxPool2d(layer.pool_size, layer.stride, resolved_pads(layer))


@torch_export(AvgPool2D)
def _avg_pool(layer: AvgPool2D, image: Any) -> nn.Module:
    return PaddedAvgPool2d(layer.pool_size, layer.stride, resolved_pads(layer))


@torch_export(ReLU)
def _relu(layer: ReLU, image: Any) -> nn.Module:
    return nn.ReLU()


@torch_export(Dropout)
def _dropout(layer: Dropout, image: Any) -> nn.Module:
    return nn.Dropout(layer.rate)


@torch_export(Flatten)
def _flatten(layer: Flatten, image: Any) -> nn.Module:
    return nn.Flatten()  # channels first: the Dense after it takes its rows permuted


@torch_export(Dense)
def _dense(layer: Dense, image: Any) -> nn.Module:
    W = layer.params["W"]
    linear = nn.Linear(int(W.shape[0]), layer.units)
    linear.load_state_dict({"weight": _tensor(dense_to_torch(W, image)),
                            "bias": _tensor(layer.params["b"])})
    return linear

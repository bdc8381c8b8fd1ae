"""The PyTorch modules of :func:`cnnstep.interop.to_torch`, one small export per layer type.

Imports torch at the top: imported only by :mod:`cnnstep.interop.torch_export` when a model is
exported. Every padding is resolved to explicit numbers that show in ``print(module)``:

- ``Conv2D``: ``nn.Conv2d`` with its symmetric padding, or :class:`PaddedConv2d` (an
  ``nn.Conv2d`` after ``F.pad``; same state-dict keys) when top/bottom or left/right differ.
- ``MaxPool2D``: :class:`PaddedMaxPool2d`: ``F.pad`` with ``-inf`` (a padded cell never wins),
  then an unpadded max pooling.
- ``AvgPool2D``: :class:`PaddedAvgPool2d`: the sums of the zero-padded windows divided by the
  number of real cells in each (as cnnstep; PyTorch's own padding is symmetric only).
- ``ReLU``, ``Dropout``, ``Flatten``, ``Dense``, ``ZeroPadding2D``, ``Sigmoid``, ``Tanh``,
  ``LeakyReLU``: ``nn.ReLU``, ``nn.Dropout``, ``nn.Flatten``, ``nn.Linear``, ``nn.ZeroPad2d``,
  ``nn.Sigmoid``, ``nn.Tanh``, ``nn.LeakyReLU``.
- ``BatchNorm2D``: ``nn.BatchNorm2d`` with ``eps=epsilon`` and ``momentum=1 - momentum``
  (PyTorch's momentum weighs the new batch); ``GlobalAvgPool2D`` / ``GlobalMaxPool2D``:
  :class:`GlobalPool2d`; ``Residual``: :class:`ResidualBlock` (``main`` and ``shortcut``
  ``nn.Sequential``, added).

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

from cnnstep.interop.layout import resolved_pads
from cnnstep.interop.weights import tensors_of
from cnnstep.nn.layers import (
    AvgPool2D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    Layer,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
    ZeroPadding2D,
)

#: How each layer type becomes a module: ``export(layer, flat) -> nn.Module``, where ``flat`` is
#: :func:`cnnstep.interop.layout.flattened_inputs` of the model (what a Dense reads through a
#: Flatten, by ``id``).
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


def _load(module: nn.Module, layer: Layer, flat: dict[int, Any]) -> nn.Module:
    """``module`` holding ``layer``'s arrays (PyTorch layout); returns it."""
    tensors = tensors_of(layer, "torch", flat.get(id(layer)))
    module.load_state_dict({name: torch.from_numpy(np.array(
        t.value, dtype=np.float32 if t.kind else t.value.dtype)) for name, t in tensors.items()})
    return module


def modules_of(layers: list[Layer], flat: dict[int, Any], prefix: str = "") -> list[nn.Module]:
    """One module per layer of ``layers`` (``prefix`` + index names a layer in errors)."""
    modules = []
    for i, layer in enumerate(layers):
        export = TORCH_EXPORTS.get(type(layer))
        if export is None:
            known = ", ".join(sorted(t.__name__ for t in TORCH_EXPORTS))
            raise ValueError(f"layer {prefix}{i} ({layer.describe()}) has no PyTorch export (it "
                             f"knows {known}); export the model to ONNX instead")
        modules.append(export(layer, flat))
    return modules


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


class GlobalPool2d(nn.Module):
    """The mean or the maximum of each channel over its whole map: ``(m, n_C)``."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3)) if self.mode == "max" else x.mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class ResidualBlock(nn.Module):
    """``main(x) + shortcut(x)`` (an empty ``shortcut`` is the identity)."""

    def __init__(self, main: nn.Sequential, shortcut: nn.Sequential) -> None:
        super().__init__()
        self.main = main
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.shortcut(x)


class NHWCSequential(nn.Sequential):
    """The exported layers (NCHW inside) behind cnnstep's interface: float32 NHWC images in;
    class probabilities (or logits, or an NHWC map for a model without a Flatten) out.

    Its ``state_dict`` keys are ``"<cnnstep layer path>.<tensor>"`` (``"0.weight"``,
    ``"4.main.1.running_var"``): the safetensors files in PyTorch layout
    (:func:`cnnstep.interop.save_weights`) load into it as they are. A binary classifier (one
    output) gives two columns, ``1 - sigmoid`` and ``sigmoid`` of its logit, as cnnstep does.
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
        if not self.probabilities:
            return x
        if x.shape[1] == 1:  # a binary classifier: its logit is class 1's
            p = torch.sigmoid(x)
            return torch.cat([1 - p, p], dim=1)
        return torch.softmax(x, dim=1)

    def extra_repr(self) -> str:
        return "input NHWC, " + ("output probabilities" if self.probabilities else "output logits")


@torch_export(Conv2D)
def _conv(layer: Conv2D, flat: Any) -> nn.Module:
    pads = resolved_pads(layer)
    (t, b), (left, r) = pads
    n_in, shape = int(layer.params["W"].shape[2]), layer.kernel_size
    conv = nn.Conv2d(n_in, layer.filters, shape, stride=layer.stride, padding=(t, left),
                     dilation=layer.dilation) if (t, left) == (b, r) \
        else PaddedConv2d(n_in, layer.filters, shape, stride=layer.stride,
                          dilation=layer.dilation, pads=pads)
    return _load(conv, layer, flat)


@torch_export(MaxPool2D)
def _max_pool(layer: MaxPool2D, flat: Any) -> nn.Module:
    return PaddedMaxPool2d(layer.pool_size, layer.stride, resolved_pads(layer))


@torch_export(AvgPool2D)
def _avg_pool(layer: AvgPool2D, flat: Any) -> nn.Module:
    return PaddedAvgPool2d(layer.pool_size, layer.stride, resolved_pads(layer))


@torch_export(ReLU)
def _relu(layer: ReLU, flat: Any) -> nn.Module:
    return nn.ReLU()


@torch_export(Dropout)
def _dropout(layer: Dropout, flat: Any) -> nn.Module:
    return nn.Dropout(layer.rate)


@torch_export(Flatten)
def _flatten(layer: Flatten, flat: Any) -> nn.Module:
    return nn.Flatten()  # channels first: the Dense after it takes its rows permuted


@torch_export(Dense)
def _dense(layer: Dense, flat: Any) -> nn.Module:
    return _load(nn.Linear(int(layer.params["W"].shape[0]), layer.units), layer, flat)


@torch_export(BatchNorm2D)
def _batch_norm(layer: BatchNorm2D, flat: Any) -> nn.Module:
    # PyTorch's momentum weighs the new batch: 1 - Keras's (cnnstep's), which weighs the old
    norm = nn.BatchNorm2d(int(layer.params["gamma"].shape[0]), eps=layer.epsilon,
                          momentum=1 - layer.momentum)
    return _load(norm, layer, flat)


@torch_export(ZeroPadding2D)
def _zero_padding(layer: ZeroPadding2D, flat: Any) -> nn.Module:
    return nn.ZeroPad2d(_f_pad(layer.padding))


@torch_export(Sigmoid)
def _sigmoid(layer: Sigmoid, flat: Any) -> nn.Module:
    return nn.Sigmoid()


@torch_export(Tanh)
def _tanh(layer: Tanh, flat: Any) -> nn.Module:
    return nn.Tanh()


@torch_export(LeakyReLU)
def _leaky_relu(layer: LeakyReLU, flat: Any) -> nn.Module:
    return nn.LeakyReLU(layer.alpha)


@torch_export(GlobalAvgPool2D, GlobalMaxPool2D)
def _global_pool(layer: GlobalAvgPool2D | GlobalMaxPool2D, flat: Any) -> nn.Module:
    return GlobalPool2d("max" if isinstance(layer, GlobalMaxPool2D) else "mean")


@torch_export(Residual)
def _residual(layer: Residual, flat: Any) -> nn.Module:
    return ResidualBlock(nn.Sequential(*modules_of(layer.main, flat, "main.")),
                         nn.Sequential(*modules_of(layer.shortcut, flat, "shortcut.")))

"""PyTorch as the oracle of the layers beside Conv2D/pooling/Dense, and of networks made of
Conv2D, BatchNorm2D, Residual and GlobalAvgPool2D (the course's residual blocks and happy model):
training-mode outputs and every gradient, running statistics, and inference outputs.

Tolerances: float64 runs agree to rounding (1e-9; the sums differ in order only). float32 runs
are compared on values of size ~1 with ``rtol = atol = 3e-5``: float32's epsilon (1.2e-7) times
the longest dot product here, the happy model's 7x7x3 window (147 terms), is 1.8e-5. The sums
over the batch (batch normalisation's statistics, the parameter gradients) are float64 on our
side; parameter gradients are compared relative to their largest entry. The largest differences
measured are 2.2e-6 (gradients of the residual network) and 1.7e-6 (the happy model's output).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch_twin import torch_twin

from cnnstep import (
    BatchNorm2D,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    GlobalMaxPool2D,
    LeakyReLU,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Tanh,
    ZeroPadding2D,
    build_architecture,
)
from cnnstep.nn.architectures import convolutional_block, identity_block

torch.set_num_threads(1)


class NHWCFlatten(nn.Module):
    """cnnstep's Flatten on NCHW tensors: flatten in (H, W, C) order."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1)


class Add(nn.Module):
    def __init__(self, main, shortcut):
        super().__init__()
        self.main, self.shortcut = main, shortcut

    def forward(self, x):
        return self.main(x) + (self.shortcut(x) if self.shortcut is not None else x)


def _param(values):
    return nn.Parameter(torch.from_numpy(np.ascontiguousarray(values)))


def twin(layer):
    """The PyTorch module computing what ``layer`` computes (NCHW), with its weights."""
    if isinstance(layer, BatchNorm2D):
        mod = nn.BatchNorm2d(layer.params["gamma"].size, eps=layer.epsilon,
                             momentum=1 - layer.momentum)
        mod.weight, mod.bias = _param(layer.params["gamma"]), _param(layer.params["beta"])
        mod.running_mean.copy_(torch.from_numpy(layer.state["moving_mean"]))
        mod.running_var.copy_(torch.from_numpy(layer.state["moving_variance"]))
        return mod
    if isinstance(layer, ZeroPadding2D):
        (t, b), (left, r) = layer.padding
        return nn.ZeroPad2d((left, r, t, b))
    if isinstance(layer, Residual):
        short = nn.Sequential(*map(twin, layer.shortcut)) if layer.shortcut else None
        return Add(nn.Sequential(*map(twin, layer.main)), short)
    simple = {Sigmoid: nn.Sigmoid, Tanh: nn.Tanh, Flatten: NHWCFlatten,
              GlobalAvgPool2D: lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
              GlobalMaxPool2D: lambda: nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())}
    if type(layer) in simple:
        return simple[type(layer)]()
    if isinstance(layer, LeakyReLU):
        return nn.LeakyReLU(layer.alpha)
    mod = torch_twin(SimpleNamespace(layers=[layer]))[0]
    if isinstance(layer, Conv2D):
        mod.weight = _param(layer.params["W"].transpose(3, 2, 0, 1))
        mod.bias = _param(layer.params["b"].reshape(-1))
    elif isinstance(layer, Dense):
        mod.weight, mod.bias = _param(layer.params["W"].T), _param(layer.params["b"])
    return mod


def _nchw(a):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def _nhwc(t):
    t = t.detach()
    return (t.permute(0, 2, 3, 1) if t.ndim == 4 else t).numpy()


def _torch_grads(mod, named):
    """The gradients of ``mod``'s parameters in cnnstep's names and layouts."""
    out = {}
    for name, p in mod.named_parameters():
        g = p.grad.numpy()
        out[name] = g.transpose(2, 3, 1, 0) if g.ndim == 4 else g.T  # (in, out) as ours
    return {ours: out[theirs] for ours, theirs in named.items()}


def _param_names(layers, prefix_ours="", prefix_torch=""):
    """cnnstep's ``<index>.<name>`` keys -> the twin's parameter names."""
    names = {}
    for i, layer in enumerate(layers):
        ours, theirs = f"{prefix_ours}{i}.", f"{prefix_torch}{i}."
        if isinstance(layer, Residual):
            names.update(_param_names(layer.main, ours + "main.", theirs + "main."))
            names.update(_param_names(layer.shortcut, ours + "shortcut.", theirs + "shortcut."))
            continue
        for k in layer.params:
            names[ours + k] = theirs + {"W": "weight", "b": "bias", "gamma": "weight",
                                        "beta": "bias"}[k]
    return names


def _compare(model, x, rtol, atol):
    """Training forward, backward of sum(out * R), running statistics, then inference."""
    mod = nn.Sequential(*map(twin, model.layers)).to(torch.float64 if x.dtype == np.float64
                                                     else torch.float32)
    mod.train()
    tx = _nchw(x).requires_grad_(True)
    out_t = mod(tx)
    out = model.forward(x, training=True)
    np.testing.assert_allclose(out, _nhwc(out_t), rtol=rtol, atol=atol)
    R = np.random.default_rng(9).standard_normal(out.shape).astype(x.dtype)
    (out_t * (_nchw(R) if R.ndim == 4 else torch.from_numpy(R))).sum().backward()
    dx = model.backward(R)
    np.testing.assert_allclose(dx, _nhwc(tx.grad), rtol=rtol, atol=atol)
    theirs = _torch_grads(mod, _param_names(model.layers))
    for key, g in model.grads.items():
        scale = max(np.abs(theirs[key]).max(), 1.0)
        np.testing.assert_allclose(g.reshape(theirs[key].shape) / scale, theirs[key] / scale,
                                   rtol=rtol, atol=atol,
                                   err_msg=key)
    # running statistics: the mean as PyTorch's; PyTorch moves the variance toward the
    # unbiased variance, so it gets the same variance by copying ours before inference
    bns = [m for m in mod.modules() if isinstance(m, nn.BatchNorm2d)]
    ours = [arr for key, arr in model.named_arrays().items() if key.endswith("moving_mean")]
    for bn, mean in zip(bns, ours):
        np.testing.assert_allclose(mean, bn.running_mean.numpy(), rtol=rtol, atol=atol)
    var_keys = [k for k in model.named_arrays() if k.endswith("moving_variance")]
    for bn, key in zip(bns, var_keys):
        bn.running_var.copy_(torch.from_numpy(model.named_arrays()[key]))
    mod.eval()
    with torch.no_grad():
        np.testing.assert_allclose(model.forward(x), _nhwc(mod(_nchw(x))), rtol=rtol, atol=atol)


LAYERS = [
    (lambda: [BatchNorm2D()], (5, 4, 3)),
    (lambda: [BatchNorm2D(momentum=0.9, epsilon=1e-5)], (3, 3, 2)),
    (lambda: [ZeroPadding2D(((1, 2), (0, 3))), Conv2D(2, 3, padding="valid")], (4, 4, 2)),
    (lambda: [Sigmoid()], (4, 4, 2)),
    (lambda: [Tanh()], (4, 4, 2)),
    (lambda: [LeakyReLU(0.3)], (4, 4, 2)),
    (lambda: [GlobalAvgPool2D(), Dense(3)], (5, 4, 3)),
    (lambda: [GlobalMaxPool2D(), Dense(3)], (5, 4, 3)),
    (lambda: [Residual([Conv2D(3, 3), BatchNorm2D()]), ReLU()], (5, 5, 3)),
    (lambda: [convolutional_block(3, (2, 3, 4), s=2), ReLU()], (7, 6, 3)),
]


@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-9, 1e-9),
                                               (np.float32, 3e-5, 3e-5)])
@pytest.mark.parametrize("make, shape", LAYERS)
def test_each_layer_matches_pytorch(make, shape, dtype, rtol, atol):
    model = Sequential(make(), shape, seed=1, dtype=dtype)
    for layer in model.layers:  # non-trivial scale and shift
        for inner in [layer, *layer.paths().get("main", [])]:
            if isinstance(inner, BatchNorm2D):
                inner.params["gamma"][:] = np.linspace(0.5, 2.0, inner.params["gamma"].size)
                inner.params["beta"][:] = np.linspace(-1.0, 1.0, inner.params["beta"].size)
    x = np.random.default_rng(2).normal(1.0, 2.0, (4, *shape)).astype(dtype)
    _compare(model, x, rtol, atol)


@pytest.mark.parametrize("dtype, rtol, atol", [(np.float64, 1e-9, 1e-9),
                                               (np.float32, 3e-5, 3e-5)])
def test_a_residual_network_matches_pytorch(dtype, rtol, atol):
    model = Sequential([
        Conv2D(6, 3, stride=2), BatchNorm2D(), ReLU(),
        convolutional_block(3, (3, 3, 8), s=1), ReLU(),
        identity_block(3, (4, 4, 8)), ReLU(),
        convolutional_block(2, (4, 4, 12), s=2), ReLU(),
        GlobalAvgPool2D(), Dense(5),
    ], (12, 12, 3), seed=3, dtype=dtype)
    x = np.random.default_rng(4).random((6, 12, 12, 3)).astype(dtype)
    _compare(model, x, rtol, atol)


def test_the_happy_model_matches_pytorch():
    model = build_architecture("happy", (64, 64, 3), 2, seed=5)
    x = np.random.default_rng(6).random((4, 64, 64, 3)).astype(np.float32)
    _compare(model, x, 3e-5, 3e-5)

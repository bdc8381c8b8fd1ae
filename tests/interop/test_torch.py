"""PyTorch export: to_torch's module (pads in sight, -inf max pooling, real-cell averages, the
safetensors torch layout as its state dict), torch.export files, weights trained in PyTorch."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from interop_models import every_option_models, inputs_for

from cnnstep.interop import save_torch, save_weights, state_dict, to_torch, weights_from_torch
from cnnstep.interop.extras import MissingExtraError
from cnnstep.nn.architectures import build_architecture
from cnnstep.nn.layers import AvgPool2D, Flatten, Layer, MaxPool2D
from cnnstep.nn.model import Sequential

torch = pytest.importorskip("torch", reason="PyTorch (a test extra)")
from torch_twin import torch_twin  # noqa: E402  (imports torch)


def run(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


@pytest.mark.parametrize("name", sorted(every_option_models()))
def test_state_dict_is_the_torch_layout(name, mnist_images, tmp_path):
    st = pytest.importorskip("safetensors.torch", reason="needs safetensors (the extra)")
    model = every_option_models()[name]
    module = to_torch(model, probabilities=False)
    mine = {k: v.numpy() for k, v in module.state_dict().items()}
    layout = state_dict(model, "torch")
    assert set(mine) == set(layout)
    for key, value in layout.items():
        np.testing.assert_array_equal(mine[key], value)
    # the test's own twin (written apart from to_torch) agrees, and a saved file loads into both
    twin = torch_twin(model)
    twin.load_state_dict(st.load_file(str(save_weights(model, tmp_path / "w.safetensors"))))
    module.load_state_dict(st.load_file(str(tmp_path / "w.safetensors")), strict=True)
    x = inputs_for(model, mnist_images[:8])
    twin.eval()
    with torch.no_grad():
        expected = twin(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(run(module, x), expected, atol=1e-6)


def test_every_pad_is_in_sight():
    text = repr(to_torch(every_option_models()["asym_pools"]))
    assert "input NHWC, output probabilities" in text
    assert "PaddedConv2d(1, 4, kernel_size=(3, 3), stride=(2, 2), dilation=(2, 2), " \
           "pads=((1, 2), (1, 2)))" in text
    assert "PaddedMaxPool2d(kernel=(3, 3), stride=(2, 2), pads=((2, 0), (1, 2)))" in text
    assert "PaddedAvgPool2d(kernel=(3, 2), stride=(2, 1), pads=((1, 2), (0, 1)))" in text
    text = repr(to_torch(build_architecture("default", (28, 28, 1), 10)))
    assert "Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in text


def test_max_pooling_never_picks_padding_and_averages_count_real_cells():
    rng = np.random.default_rng(0)
    x = -1.0 - rng.random((2, 7, 6, 3)).astype(np.float32)  # all < -1: a padded 0 would win
    model = Sequential([MaxPool2D(3, stride=2, padding=((2, 0), (1, 2)))], (7, 6, 3))
    out = run(to_torch(model), x)
    assert out.shape == (2, 4, 4, 3)  # no Flatten: NHWC out, as cnnstep
    np.testing.assert_array_equal(out, model.forward(x))  # max is exact
    assert (out < -1).all()
    ones = np.ones((2, 5, 5, 2), np.float32)  # an average that counted padding drops below 1
    model = Sequential([AvgPool2D(3, stride=1, padding=((2, 1), (0, 2))), Flatten()], (5, 5, 2))
    np.testing.assert_allclose(run(to_torch(model, probabilities=False), ones), 1.0, atol=1e-7)


def test_export_file_loads_with_torch_alone(mnist_images, tmp_path):
    model = every_option_models()["dilation_explicit"]
    path = save_torch(model, tmp_path / "model.pt2")
    program = torch.export.load(str(path)).module()
    for m in (1, 5):  # a free batch size
        x = inputs_for(model, mnist_images[:m])
        assert np.abs(run(program, x) - model.predict_proba(x)).max() <= 1e-5


def test_weights_trained_in_torch_come_back(mnist_images):
    model = build_architecture("signs", (28, 28, 1), 10, seed=1)
    module = to_torch(model, probabilities=False)
    torch.manual_seed(0)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    x = torch.from_numpy(mnist_images)
    y = torch.arange(len(mnist_images)) % 10
    module.train()
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(x), y).backward()
        opt.step()
    module.eval()
    before = model.predict_proba(mnist_images)
    weights_from_torch(model, module)
    expected = torch.softmax(torch.from_numpy(run(module, mnist_images)), 1).numpy()
    assert np.abs(before - expected).max() > 1e-3  # training changed it
    assert np.abs(model.predict_proba(mnist_images) - expected).max() <= 1e-5
    other = build_architecture("default", (28, 28, 1), 10, seed=0)
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(8, 1, 4, 4\)"):
        weights_from_torch(other, module.state_dict())


def test_refusals(tmp_path, monkeypatch):
    class Odd(Layer):
        def forward(self, x, training=False):
            return x

    with pytest.raises(ValueError, match=r"layer 0 \(Odd\(\)\) has no PyTorch export.*ONNX"):
        to_torch(Sequential([Odd(), Flatten()], (4, 4, 1)))
    with pytest.raises(ValueError, match="not built"):
        save_torch(Sequential([Flatten()]), tmp_path / "x.pt2")
    assert not (tmp_path / "x.pt2").exists()
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r"^PyTorch export needs torch: pip install "
                                                r"'cnnstep\[torch\]'$"):
        to_torch(build_architecture("default", (8, 8, 1), 2))

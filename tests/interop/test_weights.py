"""safetensors weights in PyTorch and Keras layout, checked against a PyTorch twin."""

from __future__ import annotations

import numpy as np
import pytest
from interop_models import every_option_models

from cnnstep.errors import DataError
from cnnstep.interop import load_state_dict, load_weights, save_weights, state_dict
from cnnstep.interop.weights import keras_names
from cnnstep.nn.architectures import ARCHITECTURES, build_architecture

torch = pytest.importorskip("torch", reason="PyTorch is the oracle (test extra)")
st_torch = pytest.importorskip("safetensors.torch", reason="needs safetensors (the extra)")
from torch_twin import torch_twin, twin_logits  # noqa: E402  (imports torch)


def models():
    out = {f"arch_{a}": build_architecture(a, (28, 28, 1), 10, seed=0) for a in ARCHITECTURES}
    out.update(every_option_models())
    return out


@pytest.mark.parametrize("name", sorted(models()))
def test_torch_layout_loads_into_the_twin(name, mnist_images, tmp_path):
    model = models()[name]
    path = save_weights(model, tmp_path / "w.safetensors", layout="torch")
    twin = torch_twin(model)
    twin.load_state_dict(st_torch.load_file(str(path)), strict=True)
    np.testing.assert_allclose(twin_logits(twin, mnist_images), model.forward(mnist_images),
                               atol=2e-5)


def test_torch_trained_twin_loads_into_cnnstep(mnist_images, tmp_path):
    model = build_architecture("default", (28, 28, 1), 10, seed=1)
    twin = torch_twin(model)
    torch.manual_seed(0)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    x = torch.from_numpy(mnist_images.transpose(0, 3, 1, 2).copy())
    y = torch.arange(len(mnist_images)) % 10
    twin.train()
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(twin(x), y).backward()
        opt.step()
    path = tmp_path / "trained.safetensors"
    st_torch.save_file(twin.state_dict(), str(path))
    load_weights(model, path, layout="torch")
    expected = torch.softmax(torch.from_numpy(twin_logits(twin, mnist_images)), 1).numpy()
    np.testing.assert_allclose(model.predict_proba(mnist_images), expected, atol=1e-5)
    np.testing.assert_array_equal(model.predict(mnist_images), expected.argmax(1))


def test_flatten_order_is_permuted_for_torch_only():
    model = build_architecture("default", (8, 8, 1), 3, seed=0)
    W = model.layers[-1].params["W"]  # rows in (h, w, c) order of a (2, 2, 32) image
    torch_w = state_dict(model, "torch")["7.weight"]
    keras_w = state_dict(model, "keras")["dense/kernel"]
    np.testing.assert_array_equal(keras_w, W)
    h, w, c = 1, 0, 5
    np.testing.assert_array_equal(torch_w[:, c * 4 + h * 2 + w], W[h * 2 * 32 + w * 32 + c])


def test_keras_layout_names_and_shapes():
    model = every_option_models()["dilation_explicit"]
    sd = state_dict(model, "keras")
    assert keras_names(model) == {"0": "conv2d", "2": "conv2d_1", "7": "dense", "10": "dense_1"}
    assert sd["conv2d_1/kernel"].shape == (2, 3, 3, 5)  # HWIO
    assert sd["dense/kernel"].shape[1] == 7  # (in, out)
    assert sd["dense_1/bias"].shape == (4,)


@pytest.mark.parametrize("layout", ["torch", "keras"])
def test_round_trip(layout, mnist_images, tmp_path):
    source = every_option_models()["dilation_explicit"]
    path = save_weights(source, tmp_path / "w.safetensors", layout=layout)
    target = every_option_models()["dilation_explicit"]
    for p in target.parameters():
        p[...] = 0
    load_weights(target, path, layout=layout)
    np.testing.assert_array_equal(target.forward(mnist_images), source.forward(mnist_images))


def test_mismatches_are_refused_and_leave_the_model_alone(tmp_path):
    model = build_architecture("default", (28, 28, 1), 10, seed=0)
    other = build_architecture("default", (28, 28, 1), 5, seed=0)
    path = save_weights(other, tmp_path / "w.safetensors")
    before = [p.copy() for p in model.parameters()]
    with pytest.raises(DataError, match=r"'7.weight' has shape \(5, 1568\).*\(10, 1568\)"):
        load_weights(model, path)
    with pytest.raises(DataError, match="missing 0.bias, 0.weight.*unexpected conv2d"):
        load_weights(model, save_weights(other, tmp_path / "k.safetensors", "keras"))
    for p, q in zip(model.parameters(), before):
        np.testing.assert_array_equal(p, q)
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="not a safetensors file"):
        load_weights(model, tmp_path / "bad.safetensors")
    with pytest.raises(DataError, match="cannot read"):
        load_weights(model, tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="layout must be one of torch, keras"):
        load_weights(model, path, layout="jax")


def test_batch_normalisation_layouts(tmp_path):
    from interop_models import with_statistics

    model = with_statistics(build_architecture("resnet", (32, 32, 3), 4, seed=0))
    torch_sd, keras_sd = state_dict(model, "torch"), state_dict(model, "keras")
    bn = model.layers[4].main[1]  # the first block's first batch normalisation
    assert [k for k in torch_sd if k.startswith("4.main.1.")] == [
        "4.main.1.weight", "4.main.1.bias", "4.main.1.running_mean", "4.main.1.running_var",
        "4.main.1.num_batches_tracked"]
    np.testing.assert_array_equal(torch_sd["4.main.1.running_var"], bn.state["moving_variance"])
    assert torch_sd["4.main.1.num_batches_tracked"].dtype == np.int64
    assert keras_sd["batch_normalization_1/moving_mean"].shape == bn.state["moving_mean"].shape
    assert "batch_normalization_1/gamma" in keras_sd and "conv2d_2/kernel" in keras_sd
    # PyTorch's step count is optional on the way back, and never read
    del torch_sd["4.main.1.num_batches_tracked"]
    torch_sd["4.main.4.num_batches_tracked"] = np.array(123, np.int64)
    twin = build_architecture("resnet", (32, 32, 3), 4, seed=1)
    load_state_dict(twin, torch_sd, "torch")
    for key, value in model.named_arrays().items():
        np.testing.assert_array_equal(twin.named_arrays()[key], value, err_msg=key)
    path = save_weights(model, tmp_path / "w.safetensors", layout="keras")
    twin = build_architecture("resnet", (32, 32, 3), 4, seed=2)
    load_weights(twin, path, layout="keras")
    np.testing.assert_array_equal(twin.forward(np.ones((1, 32, 32, 3), np.float32)),
                                  model.forward(np.ones((1, 32, 32, 3), np.float32)))

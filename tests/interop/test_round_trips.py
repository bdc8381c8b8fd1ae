"""cnnstep -> Keras / PyTorch / ONNX -> the same probabilities, and back for the weights.

Every built-in architecture (28x28 grey and 64x64 RGB) and every awkward option (even-kernel and
strided "same", dilation with and without a stride, explicit asymmetric max- and average-pooling
pads, dropout). Each framework computes in float32 with its own kernels (summation orders of
its own), so probabilities agree to 1e-5: float32 rounding (6e-8) times reductions of at most a
few hundred terms, through a softmax. The weights come back bit for bit (copies and
transposes only).
"""

from __future__ import annotations

import numpy as np
import pytest
from interop_models import builtin_models, every_option_models, inputs_for

from cnnstep.interop import (
    to_keras,
    to_onnx,
    to_torch,
    weights_from_keras,
    weights_from_onnx,
    weights_from_torch,
)
from cnnstep.interop.keras_export import NUMPY2_COPY_WARNING, to_numpy
from cnnstep.nn.model import Sequential

MODELS = {**builtin_models(), **every_option_models()}

# Keras's torch backend converts tensors with np.array(), which NumPy 2 deprecates
pytestmark = pytest.mark.filterwarnings(f"ignore:{NUMPY2_COPY_WARNING}:DeprecationWarning")


def fresh_twin(model: Sequential) -> Sequential:
    """The same architecture with other weights."""
    return Sequential.from_config(model.get_config(), seed=12345)


class Keras:
    def __init__(self):
        self.keras = pytest.importorskip("keras", reason="needs keras (the keras extra)")

    def export(self, model, tmp_path):
        return to_keras(model)

    def proba(self, exported, x):
        p = to_numpy(self.keras, exported(self.keras.ops.convert_to_tensor(x), training=False))
        # a binary classifier ends in Keras's one sigmoid column, class 1's probability
        return np.concatenate([1 - p, p], axis=1) if p.shape[1:] == (1,) else p

    def back(self, model, exported):
        return weights_from_keras(model, exported)


class Torch:
    def __init__(self):
        self.torch = pytest.importorskip("torch", reason="PyTorch (a test extra)")

    def export(self, model, tmp_path):
        return to_torch(model)

    def proba(self, exported, x):
        with self.torch.no_grad():
            return exported(self.torch.from_numpy(x)).numpy()

    def back(self, model, exported):
        return weights_from_torch(model, exported)


class Onnx:
    def __init__(self):
        pytest.importorskip("onnx", reason="needs onnx (the onnx extra)")
        self.ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime (the onnx extra)")

    def export(self, model, tmp_path):
        return to_onnx(model, tmp_path / "model.onnx")

    def proba(self, exported, x):
        session = self.ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
        return session.run(["probabilities"], {"input": x})[0]

    def back(self, model, exported):
        return weights_from_onnx(model, exported)


@pytest.fixture(scope="module", params=["keras", "torch", "onnx"])
def framework(request):
    return {"keras": Keras, "torch": Torch, "onnx": Onnx}[request.param]()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_probabilities_and_weights_back(framework, name, mnist_images, tmp_path):
    model = MODELS[name]
    x = inputs_for(model, mnist_images[:16])
    exported = framework.export(model, tmp_path)
    proba = framework.proba(exported, x)
    expected = model.predict_proba(x)
    assert proba.shape == expected.shape
    assert np.abs(proba - expected).max() <= 1e-5
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)

    twin = fresh_twin(model)
    assert not np.array_equal(twin.parameters()[0], model.parameters()[0])
    assert framework.back(twin, exported) is twin
    mine, back = model.named_arrays(), twin.named_arrays()  # parameters and running statistics
    assert mine.keys() == back.keys()
    for key in mine:
        np.testing.assert_array_equal(back[key], mine[key], err_msg=key)

"""Keras export: a .keras file Keras loads as it is, names that never depend on a session, the
safetensors Keras layout, weights trained in Keras coming back, refusals."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from interop_models import every_option_models, inputs_for

from cnnstep.interop import keras_export as kx
from cnnstep.interop import save_keras, save_weights, state_dict, to_keras, weights_from_keras
from cnnstep.interop.extras import MissingExtraError
from cnnstep.nn.architectures import build_architecture
from cnnstep.nn.layers import Flatten, Layer
from cnnstep.nn.model import Sequential

keras = pytest.importorskip("keras", reason="needs keras (the keras extra)")

# Keras's torch backend converts tensors with np.array(), which NumPy 2 deprecates
pytestmark = pytest.mark.filterwarnings(f"ignore:{kx.NUMPY2_COPY_WARNING}:DeprecationWarning")


def keras_proba(keras_model, x):
    return kx.to_numpy(keras, keras_model(keras.ops.convert_to_tensor(x), training=False))


@pytest.fixture(scope="module")
def model():
    return every_option_models()["dilation_explicit"]


def test_the_file_loads_as_it_is(model, mnist_images, tmp_path):
    x = inputs_for(model, mnist_images)
    path = save_keras(model, tmp_path / "model.keras")
    loaded = keras.models.load_model(path)  # safe mode, no custom objects
    assert np.abs(keras_proba(loaded, x) - model.predict_proba(x)).max() <= 1e-5
    assert [w.path for w in loaded.weights] == [w.path for w in to_keras(model).weights]
    assert loaded.input_shape == (None, 28, 28, 1) and loaded.layers[0].name == "input"
    # a stride with a dilation: a stride-1 convolution, then a size-1 pooling keeps every 2nd
    names = [layer.name for layer in loaded.layers]
    assert names.index("conv2d_1") + 1 == names.index("conv2d_1_stride")
    assert loaded.get_layer("conv2d_1").strides == (1, 1)
    assert loaded.get_layer("conv2d_1").dilation_rate == (2, 1)
    assert names[-1] == "probabilities"


def test_names_do_not_depend_on_what_the_session_built(model):
    first = [layer.name for layer in to_keras(model).layers]
    keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3),
                      keras.layers.Flatten(), keras.layers.Dense(2)])  # takes default names
    again = [layer.name for layer in to_keras(model).layers]
    assert again == first
    assert [n for n in first if n in ("conv2d", "conv2d_1", "dense", "dense_1")] == \
        ["conv2d", "conv2d_1", "dense", "dense_1"]


def test_safetensors_keras_layout_names_the_keras_weights(model, tmp_path):
    st = pytest.importorskip("safetensors.numpy", reason="needs safetensors (the extra)")
    tensors = st.load_file(str(save_weights(model, tmp_path / "w.safetensors", layout="keras")))
    keras_model = to_keras(model)
    weights = {w.path: kx.to_numpy(keras, w.value) for w in keras_model.weights}
    assert set(weights) == set(tensors) == set(state_dict(model, "keras"))
    for key, value in tensors.items():
        np.testing.assert_array_equal(weights[key], value)


def test_weights_trained_in_keras_come_back(mnist_images):
    model = build_architecture("default", (28, 28, 1), 10, seed=1)
    keras_model = to_keras(model, probabilities=False)
    assert keras_model.layers[-1].name == "dense"  # logits: no softmax at the end
    keras_model.compile(optimizer=keras.optimizers.SGD(0.1),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    keras.utils.set_random_seed(0)
    keras_model.fit(mnist_images, np.arange(len(mnist_images)) % 10, epochs=2, batch_size=8,
                    verbose=0)
    before = model.predict_proba(mnist_images)
    weights_from_keras(model, keras_model)
    logits = keras_proba(keras_model, mnist_images)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    assert np.abs(before - expected).max() > 1e-3  # training changed it
    assert np.abs(model.predict_proba(mnist_images) - expected).max() <= 1e-5


def test_weights_from_a_keras_file(model, tmp_path):
    path = save_keras(model, tmp_path / "m.keras")
    twin = Sequential.from_config(model.get_config(), seed=7)
    weights_from_keras(twin, path)
    for a, b in zip(twin.parameters(), model.parameters()):
        np.testing.assert_array_equal(a, b)
    other = build_architecture("default", (28, 28, 1), 10, seed=0)
    before = [p.copy() for p in other.parameters()]
    with pytest.raises(ValueError, match=r"conv2d/kernel. has shape \(3, 3, 1, 3\)"):
        weights_from_keras(other, path)
    for a, b in zip(other.parameters(), before):
        np.testing.assert_array_equal(a, b)


def test_a_layer_keras_cannot_express_is_refused_by_name(tmp_path):
    class Odd(Layer):
        def forward(self, x, training=False):
            return x

    model = Sequential([Odd(), Flatten()], (4, 4, 1))
    with pytest.raises(ValueError, match=r"layer 0 \(Odd\(\)\) has no exact Keras equivalent"
                                         r".*--format onnx"):
        save_keras(model, tmp_path / "x.keras")
    assert not (tmp_path / "x.keras").exists()
    with pytest.raises(ValueError, match="must end in .keras"):
        save_keras(build_architecture("default", (8, 8, 1), 2), tmp_path / "x.h5")
    with pytest.raises(ValueError, match="not built"):
        to_keras(Sequential([Flatten()]))


def test_a_failed_save_leaves_the_old_file(model, tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    path.write_bytes(b"mine")

    def broken(self, filepath, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_keras(model, path)
    assert path.read_bytes() == b"mine"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_missing_keras_is_one_line(monkeypatch):
    monkeypatch.setattr(kx.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=r"^Keras export needs keras: pip install "
                                                r"'cnnstep\[keras\]' \(and a backend"):
        kx.import_keras()


def test_the_cli_picks_an_installed_backend(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "keras")
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "no_such_backend"}))
    assert kx.pick_keras_backend() == "torch"  # the first installed: torch, jax, tensorflow
    import os

    assert os.environ["KERAS_BACKEND"] == "torch"
    monkeypatch.delenv("KERAS_BACKEND")
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert kx.pick_keras_backend() is None and "KERAS_BACKEND" not in os.environ


def test_the_course_happy_model_reads_as_in_keras(mnist_images, tmp_path):
    from interop_models import inputs_for, with_statistics

    model = with_statistics(build_architecture("happy", (64, 64, 3), 2, seed=0))
    loaded = keras.models.load_model(save_keras(model, tmp_path / "happy.keras"))
    kinds = [type(layer).__name__ for layer in loaded.layers]
    assert kinds == ["InputLayer", "ZeroPadding2D", "Conv2D", "BatchNormalization", "ReLU",
                     "MaxPooling2D", "Flatten", "Dense", "Activation"]
    norm = loaded.get_layer("batch_normalization")
    assert (norm.momentum, norm.epsilon) == (0.99, 1e-3)  # the same meaning as cnnstep's
    assert loaded.count_params() == 37_633  # the course's summary: 37,569 trainable
    assert loaded.output_shape == (None, 1)  # a binary classifier: one sigmoid column
    assert loaded.get_layer("probabilities").get_config()["activation"] == "sigmoid"
    x = inputs_for(model, mnist_images[:8])
    np.testing.assert_allclose(keras_proba(loaded, x)[:, 0], model.predict_proba(x)[:, 1],
                               atol=1e-5)

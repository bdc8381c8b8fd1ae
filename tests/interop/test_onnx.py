"""ONNX export, run in ONNX Runtime against cnnstep's own outputs: the graph's interface, its
metadata, padding, the way back for weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
from interop_models import every_option_models

import cnnstep
from cnnstep.errors import DataError
from cnnstep.interop import to_onnx, weights_from_onnx
from cnnstep.interop.onnx_export import class_names_of, onnx_pads
from cnnstep.nn.architectures import build_architecture
from cnnstep.nn.layers import Conv2D, Flatten
from cnnstep.nn.model import Sequential

onnx = pytest.importorskip("onnx", reason="needs onnx (the onnx extra)")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime (the onnx extra)")


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits", "probabilities"], {"input": x})


def check_same(model, x, tmp_path):
    path = to_onnx(model, tmp_path / "model.onnx")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    logits, probs = run_onnx(path, x)
    assert np.abs(logits - model.forward(x)).max() <= 1e-5
    assert np.abs(probs - model.predict_proba(x)).max() <= 1e-5
    return path


# Every built-in architecture and option: test_round_trips.py.


def test_trained_model_matches(mnist_images, tmp_path):
    model = build_architecture("default", (28, 28, 1), 10, seed=0)
    y = np.arange(len(mnist_images)) % 10
    model.fit(mnist_images, y, epochs=1, batch_size=8, threads=1)
    check_same(model, mnist_images, tmp_path)


def test_float64_model_exports_as_float32(mnist_images, tmp_path):
    model = build_architecture("default", (28, 28, 1), 10, seed=0, dtype=np.float64)
    check_same(model, mnist_images, tmp_path)


def test_graph_interface(mnist_images, tmp_path):
    model = every_option_models()["stride_same_asym"]
    model.class_names = [f"c{k}" for k in range(5)]
    proto = onnx.load(str(to_onnx(model, tmp_path / "m.onnx")))
    (inp,) = proto.graph.input
    assert inp.name == "input"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [28, 28, 1]
    assert [o.name for o in proto.graph.output] == ["logits", "probabilities"]
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    attrs = {a.name: list(a.ints) for a in conv.attribute}
    assert attrs["pads"] == [0, 0, 1, 1]  # explicit: 28 / stride 2 "same" pads bottom/right
    assert "auto_pad" not in attrs
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["class_names"]) == model.class_names
    # a free batch size: any number of images
    for m in (1, 7):
        logits, _ = run_onnx(tmp_path / "m.onnx", mnist_images[:m])
        assert logits.shape == (m, 5)


def test_average_pool_excludes_padding(tmp_path):
    # an all-ones image: averages that counted padded zeros would drop below 1 at the border
    from cnnstep.nn.layers import AvgPool2D

    model = Sequential([AvgPool2D(3, stride=1, padding="same"), Flatten()], (5, 5, 2))
    x = np.ones((2, 5, 5, 2), np.float32)
    path = to_onnx(model, tmp_path / "avg.onnx")
    (out,) = ort.InferenceSession(str(path)).run(["logits"], {"input": x})
    np.testing.assert_allclose(out, 1.0, atol=1e-7)


def test_max_pool_never_picks_padding(tmp_path):
    from cnnstep.nn.layers import MaxPool2D

    model = Sequential([MaxPool2D(3, stride=2, padding=1)], (6, 6, 1))
    x = -1.0 - np.random.default_rng(0).random((2, 6, 6, 1)).astype(np.float32)  # all < 0
    path = to_onnx(model, tmp_path / "max.onnx")
    (out,) = ort.InferenceSession(str(path)).run(["logits"], {"input": x})
    assert out.shape == (2, 3, 3, 1)  # no Flatten: NHWC out, as cnnstep
    np.testing.assert_allclose(out, model.forward(x), atol=0)
    assert (out < -1).all()


def test_the_file_says_who_wrote_it_and_what_it_holds(tmp_path):
    model = build_architecture("signs", (64, 64, 3), 3, seed=0,
                               class_names=["one\ntwo", 'quote " and , comma', "ünï"])
    proto = onnx.load(str(to_onnx(model, tmp_path / "m.onnx", model_version=7)))
    assert proto.producer_name == "cnnstep"
    assert proto.producer_version == cnnstep.__version__
    assert proto.model_version == 7
    assert proto.doc_string == (
        "cnnstep Sequential on float32 NHWC inputs of 64x64x3: Conv2D(8, 4x4, same) -> ReLU() -> "
        "MaxPool2D(8x8, same) -> Conv2D(16, 2x2, same) -> ReLU() -> MaxPool2D(4x4, same) -> "
        "Flatten() -> Dense(3)")
    props = {p.key: p.value for p in proto.metadata_props}
    # a name holding a newline reads back as one class
    assert class_names_of(proto) == json.loads(props["class_names"]) == model.class_names
    assert props["input_layout"] == "NHWC"
    assert json.loads(props["cnnstep_config"]) == model.get_config()
    with pytest.raises(ValueError, match="model_version must be an int >= 0"):
        to_onnx(model, tmp_path / "x.onnx", model_version=-1)


def test_weights_come_back_from_the_file(tmp_path):
    model = every_option_models()["asym_pools"]
    path = to_onnx(model, tmp_path / "m.onnx")
    twin = Sequential.from_config(model.get_config(), seed=99)
    weights_from_onnx(twin, path)
    for a, b in zip(twin.parameters(), model.parameters()):
        np.testing.assert_array_equal(a, b)
    other = build_architecture("default", (28, 28, 1), 6, seed=0)
    with pytest.raises(DataError, match="missing"):
        weights_from_onnx(other, path)
    (tmp_path / "bad.onnx").write_bytes(b"\xff" * 10)
    with pytest.raises(DataError, match="not an ONNX file"):
        weights_from_onnx(twin, tmp_path / "bad.onnx")
    with pytest.raises(DataError, match="cannot read"):
        weights_from_onnx(twin, tmp_path / "none.onnx")


def test_onnx_pads_order():
    assert onnx_pads(((1, 2), (3, 4))) == [1, 3, 2, 4]


def test_refuses_unbuilt_and_unknown_layers(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        to_onnx(Sequential([Conv2D(2, 3), Flatten()]), tmp_path / "x.onnx")

    from cnnstep.nn.layers import Layer

    class Odd(Layer):
        def forward(self, x, training=False):
            return x

    model = Sequential([Odd(), Flatten()], (4, 4, 1))
    with pytest.raises(ValueError, match="layer 0 .*no ONNX export"):
        to_onnx(model, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()

"""ONNX export: :func:`to_onnx` writes a cnnstep model as an ONNX graph for ONNX Runtime & co;
:func:`weights_from_onnx` reads the weights back.

The graph takes what cnnstep takes, float32 NHWC images named ``input`` with a free batch size,
transposes them to NCHW once, and runs standard operators (one small export per layer type in
:mod:`cnnstep.interop.onnx_layers`): ``Conv`` (OIHW kernels, explicit ``pads``, ``dilations``),
``MaxPool`` / ``AveragePool`` (explicit ``pads``; average pooling with ``count_include_pad=0``,
as cnnstep leaves padded cells out of the mean), ``BatchNormalization`` (the running
statistics), ``Pad``, ``GlobalAveragePool`` / ``GlobalMaxPool``, ``Relu``, ``LeakyRelu``,
``Sigmoid``, ``Tanh``, ``Add`` (a ``Residual``'s two paths), ``Gemm``. A ``Flatten`` first
transposes back to NHWC so the values come out in cnnstep's order and the Dense weights keep
theirs. Dropout is the identity at inference. Outputs: ``logits`` and, for a model that ends in
class scores, ``probabilities``: the softmax, or for a binary classifier (one output, the logit
of class 1) ``1 - sigmoid`` and ``sigmoid``, as ``model.predict_proba``.

The weights are initializers named as in cnnstep's model files (``"<layer path>.<array>"``:
``"0.W"``, ``"4.main.1.moving_mean"``; convolution kernels in ONNX's OIHW). The file says who
wrote it (``producer_name`` "cnnstep", ``producer_version`` the cnnstep version), what it holds
(a doc string listing the layers, ``model_version``) and, in its metadata, ``class_names`` (a
JSON list), ``input_layout`` ("NHWC") and ``cnnstep_config`` (the model's architecture, JSON).
``onnx`` is imported only when a model is exported.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.budget import check_bytes
from cnnstep.errors import DataError
from cnnstep.fileio import atomic_write
from cnnstep.interop.extras import require
from cnnstep.interop.onnx_layers import (
    ONNX_EXPORTS,
    TO_NCHW,
    TO_NHWC,
    OnnxGraph,
    onnx_export,
    onnx_pads,
)
from cnnstep.interop.weights import load_state_dict, state_dict
from cnnstep.nn.model import Sequential

#: The ONNX operator set the graph is written for (ONNX Runtime >= 1.13 reads it).
OPSET = 17
#: IR version 8 goes with opset 17; newer files would be refused by older runtimes.
IR_VERSION = 8

__all__ = ["ONNX_EXPORTS", "build_onnx", "class_names_of", "onnx_export", "onnx_pads",
           "to_onnx", "weights_from_onnx"]


def cnnstep_version() -> str:
    """The version of the cnnstep package that is running."""
    # the package is loaded before any of its modules: reading its attribute imports nothing
    return str(getattr(sys.modules[__name__.partition(".")[0]], "__version__", "unknown"))


def describe(model: Sequential) -> str:
    """One line naming the model's architecture, for the file's doc string."""
    shape = "x".join(map(str, model.input_shape or ()))
    return (f"cnnstep Sequential on float32 NHWC inputs of {shape}: "
            + " -> ".join(layer.describe() for layer in model.layers))


def build_onnx(model: Sequential, *, name: str = "cnnstep", model_version: int = 1) -> Any:
    """The ONNX ``ModelProto`` of ``model`` (see the module docstring for the graph).

    Parameters
    ----------
    model : Sequential
        Built (its input shape is known).
    model_version : int, default 1
        The file's ``model_version``.

    Raises
    ------
    ValueError
        If the model is not built or holds a layer with no ONNX counterpart here.
    """
    onnx = require("onnx", "onnx", "ONNX export")
    helper = require("onnx.helper", "onnx", "ONNX export")
    require("onnx.numpy_helper", "onnx", "ONNX export")
    if not model.built:
        raise ValueError("model is not built: build it (or train it) before exporting")
    if isinstance(model_version, bool) or not isinstance(model_version, int) \
            or model_version < 0:
        raise ValueError(f"model_version must be an int >= 0, got {model_version!r}")
    g = OnnxGraph(onnx)
    x = "input"
    if len(model.input_shape or ()) == 3:
        x, g.nchw = g.node("Transpose", [x], "to_nchw", perm=TO_NCHW), True
    x = g.run(model.layers, x)
    if g.nchw:
        x = g.node("Transpose", [x], "to_nhwc", perm=TO_NHWC)
    float_ = onnx.TensorProto.FLOAT
    out_shape = ["batch", *(model.output_shape or ())]
    g.nodes.append(helper.make_node("Identity", [x], ["logits"], name="logits"))
    outputs = [helper.make_tensor_value_info("logits", float_, out_shape)]
    if out_shape == ["batch", 1]:  # a binary classifier: its logit is class 1's
        p = g.node("Sigmoid", ["logits"], "sigmoid")
        q = g.node("Sub", [g.const("one", np.ones((1, 1))), p], "complement")
        g.nodes.append(helper.make_node("Concat", [q, p], ["probabilities"], axis=1,
                                        name="probabilities"))
        outputs.append(helper.make_tensor_value_info("probabilities", float_, ["batch", 2]))
    elif len(out_shape) == 2:
        g.nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1,
                                        name="probabilities"))
        outputs.append(helper.make_tensor_value_info("probabilities", float_, out_shape))
    inputs = [helper.make_tensor_value_info("input", float_, ["batch", *(model.input_shape or ())])]
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.inits,
                              doc_string=describe(model))
    proto = helper.make_model(graph, producer_name="cnnstep", producer_version=cnnstep_version(),
                              doc_string=describe(model), model_version=model_version,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    props = {"input_layout": "NHWC", "cnnstep_config": json.dumps(model.get_config())}
    if model.class_names:
        props["class_names"] = json.dumps(list(model.class_names), ensure_ascii=False)
    helper.set_model_props(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(model: Sequential, path: str | Path, *, model_version: int = 1) -> Path:
    """Write ``model`` as an ONNX file (atomically); returns the path.

    Parameters
    ----------
    model : Sequential
        Built. The file's input is ``input``, float32 of shape (batch, n_H, n_W, n_C) (NHWC, as
        cnnstep); its outputs ``logits`` (batch, n_classes) and ``probabilities`` (softmax).
    path : str or Path
    model_version : int, default 1
        Stored as the file's ``model_version``.

    Raises
    ------
    ValueError
        For a model that is not built or holds a layer ONNX export does not know.
    MissingExtraError
        Without the ``onnx`` extra.
    """
    proto = build_onnx(model, model_version=model_version)
    path = Path(path)
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return path


def class_names_of(proto: Any) -> list[str] | None:
    """The class names an exported file stores (its ``class_names`` metadata), or None."""
    for prop in proto.metadata_props:
        if prop.key == "class_names":
            names = json.loads(prop.value)
            if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                raise DataError("class_names in the ONNX metadata is not a JSON list of strings")
            return names
    return None


def weights_from_onnx(model: Sequential, path: str | Path) -> Sequential:
    """Copy the weights of an ONNX file written by :func:`to_onnx` into ``model`` (built, same
    architecture); returns ``model``. Shapes are checked before anything is copied."""
    onnx = require("onnx", "onnx", "ONNX weights")
    numpy_helper = require("onnx.numpy_helper", "onnx", "ONNX weights")
    if not model.built:
        raise ValueError("model is not built: build it before loading weights")
    try:
        # the file is parsed whole, then its tensors copied: twice its size
        check_bytes(2 * os.path.getsize(path), str(path))
        proto = onnx.load(str(path), load_external_data=False)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except DataError:
        raise
    except Exception as exc:  # onnx raises protobuf's own errors for files it cannot parse
        raise DataError(f"{path}: not an ONNX file ({exc})") from exc
    wanted = state_dict(model, "onnx")  # the initializers that hold the model's arrays
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer
             if t.name in wanted}
    return load_state_dict(model, inits, "onnx", source=str(path))

"""ONNX export: :func:`to_onnx` writes a cnnstep model as an ONNX graph for ONNX Runtime & co.

The graph takes what cnnstep takes, float32 NHWC images named ``input`` with a free batch size,
transposes them to NCHW once, and runs standard operators: ``Conv`` (OIHW kernels, explicit
``pads``, ``dilations``), ``MaxPool`` / ``AveragePool`` (explicit ``pads``; average pooling with
``count_include_pad=0``, as cnnstep leaves padded cells out of the mean), ``Relu``, ``Gemm``. A
``Flatten`` first transposes back to NHWC so the values come out in cnnstep's order and the Dense
weights keep theirs. Dropout is the identity at inference. Outputs: ``logits`` and, for a model
that ends in class scores, ``probabilities`` (softmax).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.fileio import atomic_write
from cnnstep.interop.extras import require
from cnnstep.interop.layout import hwio_to_oihw, resolved_pads
from cnnstep.nn.layers import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from cnnstep.nn.model import Sequential

#: The ONNX operator set the graph is written for (ONNX Runtime >= 1.13 reads it).
OPSET = 17
#: IR version 8 goes with opset 17; newer files would be refused by older runtimes.
IR_VERSION = 8

_TO_NCHW = [0, 3, 1, 2]
_TO_NHWC = [0, 2, 3, 1]


def onnx_pads(pads: tuple[tuple[int, int], tuple[int, int]]) -> list[int]:
    """cnnstep's ``((top, bottom), (left, right))`` as ONNX ``[top, left, bottom, right]``."""
    (t, b), (left, r) = pads
    return [t, left, b, r]


def build_onnx(model: Sequential, *, name: str = "cnnstep") -> Any:
    """The ONNX ``ModelProto`` of ``model`` (see the module docstring for the graph).

    Parameters
    ----------
    model : Sequential
        Built (its input shape is known).

    Raises
    ------
    ValueError
        If the model is not built or holds a layer with no ONNX counterpart here.
    """
    helper = require("onnx.helper", "onnx", "ONNX export")
    onnx = require("onnx", "onnx", "ONNX export")
    if not model.built:
        raise ValueError("model is not built: build it (or train it) before exporting")
    nodes: list[Any] = []
    inits: list[Any] = []
    counter = iter(range(10**9))

    def fresh(stem: str) -> str:
        return f"{stem}_{next(counter)}"

    def const(stem: str, array: np.ndarray) -> str:
        tname = fresh(stem)
        inits.append(onnx.numpy_helper.from_array(np.asarray(array, dtype=np.float32), tname))
        return tname

    def node(op: str, inputs: list[str], stem: str, **attrs: Any) -> str:
        out = fresh(stem)
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    x = "input"
    nchw = False  # whether x is currently an NCHW image
    if len(model.input_shape or ()) == 3:
        x, nchw = node("Transpose", [x], "to_nchw", perm=_TO_NCHW), True
    for i, layer in enumerate(model.layers):
        stem = f"{i}_{layer.name.lower()}"
        if isinstance(layer, Conv2D):
            W, b = layer.params["W"], layer.params["b"]
            x = node("Conv", [x, const(f"{stem}_W", hwio_to_oihw(W)), const(f"{stem}_b",
                                                                          b.reshape(-1))],
                     stem, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                     dilations=list(layer.dilation), pads=onnx_pads(resolved_pads(layer)))
        elif isinstance(layer, MaxPool2D):
            x = node("MaxPool", [x], stem, kernel_shape=list(layer.pool_size),
                     strides=list(layer.stride), pads=onnx_pads(resolved_pads(layer)))
        elif isinstance(layer, AvgPool2D):
            x = node("AveragePool", [x], stem, kernel_shape=list(layer.pool_size),
                     strides=list(layer.stride), pads=onnx_pads(resolved_pads(layer)),
                     count_include_pad=0)
        elif isinstance(layer, ReLU):
            x = node("Relu", [x], stem)
        elif isinstance(layer, Dropout):
            x = node("Identity", [x], stem)  # inverted dropout: nothing to do at inference
        elif isinstance(layer, Flatten):
            if nchw:
                x, nchw = node("Transpose", [x], f"{stem}_to_nhwc", perm=_TO_NHWC), False
            x = node("Flatten", [x], stem, axis=1)
        elif isinstance(layer, Dense):
            x = node("Gemm", [x, const(f"{stem}_W", layer.params["W"]),
                              const(f"{stem}_b", layer.params["b"])], stem)
        else:
            raise ValueError(f"layer {i} ({layer.describe()}) has no ONNX export; exportable: "
                             "Conv2D, MaxPool2D, AvgPool2D, ReLU, Dropout, Flatten, Dense")
    if nchw:
        x = node("Transpose", [x], "to_nhwc", perm=_TO_NHWC)
    out_shape = ["batch", *(model.output_shape or ())]
    nodes.append(helper.make_node("Identity", [x], ["logits"], name="logits"))
    outputs = [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, out_shape)]
    if len(out_shape) == 2:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1,
                                      name="probabilities"))
        outputs.append(helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT,
                                                     out_shape))
    inputs = [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT,
                                            ["batch", *(model.input_shape or ())])]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    proto = helper.make_model(graph, producer_name="cnnstep",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    if model.class_names:
        helper.set_model_props(proto, {"class_names": "\n".join(model.class_names)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(model: Sequential, path: str | Path) -> Path:
    """Write ``model`` as an ONNX file (atomically); returns the path.

    Parameters
    ----------
    model : Sequential
        Built. The file's input is ``input``, float32 of shape (batch, n_H, n_W, n_C) (NHWC, as
        cnnstep); its outputs ``logits`` (batch, n_classes) and ``probabilities`` (softmax).
    path : str or Path

    Raises
    ------
    ValueError
        For a model that is not built or holds a layer ONNX export does not know.
    MissingExtraError
        Without the ``onnx`` extra.
    """
    proto = build_onnx(model)
    path = Path(path)
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return path

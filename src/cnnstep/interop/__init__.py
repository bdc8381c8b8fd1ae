"""Interoperability: a cnnstep model in other tools' formats and frameworks.

Lives here: ``extras`` (lazy imports of the optional libraries, with a one-line error naming the
extra to install), ``layout`` (where cnnstep's NHWC/HWIO arrays go in NCHW/OIHW frameworks, the
padding each layer resolves to, Keras names), ``onnx_export`` (:func:`to_onnx`,
:func:`weights_from_onnx`) with its per-layer exports in ``onnx_layers``, ``keras_export``
(:func:`to_keras`, :func:`save_keras`, :func:`weights_from_keras`), ``torch_export``
(:func:`to_torch`, :func:`save_torch`, :func:`weights_from_torch`) with its modules in
``torch_modules``, ``weights`` (each layer's arrays in PyTorch, Keras and ONNX layout;
safetensors files: :func:`save_weights`, :func:`load_weights`), ``estimator`` (the scikit-learn
:class:`CNNClassifier`, also ``cnnstep.sklearn.CNNClassifier``) and ``dask`` (predictions on
dask arrays, for data beyond one machine). Each exporter is a registry of one small function per
layer type.

May import: :mod:`cnnstep.nn`, :mod:`cnnstep.ops`, :mod:`cnnstep.train`, :mod:`cnnstep.data` and
this folder. Never the CLI or the checker. The optional libraries (onnx, keras, torch,
safetensors, scikit-learn, dask) are imported only inside the functions that need them
(``torch_modules`` and ``estimator`` import theirs at the top and are themselves imported late).
"""

from __future__ import annotations

from typing import Any

from cnnstep.interop.keras_export import save_keras, to_keras, weights_from_keras
from cnnstep.interop.onnx_export import to_onnx, weights_from_onnx
from cnnstep.interop.torch_export import save_torch, to_torch, weights_from_torch
from cnnstep.interop.weights import load_state_dict, load_weights, save_weights, state_dict

__all__ = ["CNNClassifier", "load_state_dict", "load_weights", "save_keras", "save_torch",
           "save_weights", "state_dict", "to_keras", "to_onnx", "to_torch", "weights_from_keras",
           "weights_from_onnx", "weights_from_torch"]


def __getattr__(name: str) -> Any:
    # The estimator subclasses scikit-learn's base classes, so importing it imports scikit-learn:
    # only done when asked for.
    if name == "CNNClassifier":
        from cnnstep.interop.estimator import CNNClassifier

        return CNNClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

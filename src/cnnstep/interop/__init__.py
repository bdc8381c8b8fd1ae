"""Interoperability: a cnnstep model in other tools' formats and frameworks.

Lives here: ``extras`` (lazy imports of the optional libraries, with a one-line error naming the
extra to install), ``layout`` (where cnnstep's NHWC/HWIO arrays go in NCHW/OIHW frameworks, the
padding each layer resolves to), ``onnx_export`` (:func:`to_onnx`), ``weights`` (safetensors files
in PyTorch or Keras layout: :func:`save_weights`, :func:`load_weights`), ``estimator`` (the
scikit-learn :class:`CNNClassifier`, also ``cnnstep.sklearn.CNNClassifier``) and ``dask``
(predictions on dask arrays, for data beyond one machine).

May import: :mod:`cnnstep.nn`, :mod:`cnnstep.ops`, :mod:`cnnstep.train`, :mod:`cnnstep.data` and
this folder. Never the CLI or the checker. The optional libraries (onnx, safetensors,
scikit-learn, dask) are imported only inside the functions that need them.
"""

from __future__ import annotations

from typing import Any

from cnnstep.interop.onnx_export import to_onnx
from cnnstep.interop.weights import load_state_dict, load_weights, save_weights, state_dict

__all__ = ["CNNClassifier", "load_state_dict", "load_weights", "save_weights", "state_dict",
           "to_onnx"]


def __getattr__(name: str) -> Any:
    # The estimator subclasses scikit-learn's base classes, so importing it imports scikit-learn:
    # only done when asked for.
    if name == "CNNClassifier":
        from cnnstep.interop.estimator import CNNClassifier

        return CNNClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""PyTorch export: :func:`to_torch` (an ``nn.Module``), :func:`save_torch` (a ``torch.export``
program file) and :func:`weights_from_torch` (the way back).

PyTorch is optional: this module imports it only when called; the modules themselves live in
:mod:`cnnstep.interop.torch_modules`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.fileio import atomic_write
from cnnstep.interop.extras import require
from cnnstep.interop.layout import flattened_inputs
from cnnstep.interop.weights import load_state_dict
from cnnstep.nn.model import Sequential


def to_torch(model: Sequential, *, probabilities: bool = True) -> Any:
    """The PyTorch module computing what ``model`` computes, with the model's weights.

    Parameters
    ----------
    model : Sequential
        Built. Its weights are copied (float32).
    probabilities : bool, default True
        Give class probabilities (softmax), as ``model.predict_proba``; False: the logits (what
        ``torch.nn.functional.cross_entropy`` takes, to train it further).

    Returns
    -------
    torch.nn.Module
        In eval mode. Takes float32 NHWC images of shape (batch, n_H, n_W, n_C), as cnnstep;
        every padding is explicit (see :mod:`cnnstep.interop.torch_modules`). Its
        ``state_dict()`` is :func:`cnnstep.interop.state_dict` in ``"torch"`` layout.

    Raises
    ------
    ValueError
        A model that is not built, or a layer with no PyTorch export (named).
    MissingExtraError
        Without PyTorch.
    """
    require("torch", "torch", "PyTorch export")
    if not model.built:
        raise ValueError("model is not built: build it (or train it) before exporting")
    tm = importlib.import_module("cnnstep.interop.torch_modules")
    modules = tm.modules_of(model.layers, flattened_inputs(model.layers))
    return tm.NHWCSequential(*modules, probabilities=probabilities).eval()


def export_program(model: Sequential, *, probabilities: bool = True) -> Any:
    """``torch.export.export`` of :func:`to_torch`, with a free batch size."""
    torch = require("torch", "torch", "PyTorch export")
    module = to_torch(model, probabilities=probabilities)
    example = torch.zeros((2, *(model.input_shape or ())), dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1)
    return torch.export.export(module, (example,), dynamic_shapes=({0: batch},))


def save_torch(model: Sequential, path: str | Path, *, probabilities: bool = True) -> Path:
    """Write the ``torch.export`` program of ``model`` to ``path`` (a ``.pt2`` file, atomically).

    Load it with ``torch.export.load(path).module()``: a module taking float32 NHWC images of
    any batch size, with no cnnstep (nor any code of the user's) needed.
    """
    torch = require("torch", "torch", "PyTorch export")
    program = export_program(model, probabilities=probabilities)
    path = Path(path)
    atomic_write(path, lambda f: torch.export.save(program, f))
    return path


def weights_from_torch(model: Sequential, source: Any) -> Sequential:
    """Copy the weights of a module made by :func:`to_torch` (and maybe trained since), or of its
    ``state_dict()``, into ``model`` (built, same architecture); returns ``model``.

    Shapes are checked against the model before anything is copied.
    """
    state = source.state_dict() if hasattr(source, "state_dict") else dict(source)
    arrays = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
              for k, v in state.items()}
    return load_state_dict(model, arrays, "torch", source="PyTorch state dict")

"""The checkpoint file: a model file plus everything needed to continue training exactly.

Beside the model file's entries (:mod:`cnnstep.nn.io`) it holds ``__checkpoint__`` (JSON:
training progress, optimizer settings, random-generator state, metrics so far), the optimizer's
arrays (``optimizer/m.0``, ...) and the progress arrays (``state/perm``). Written atomically,
read without pickle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnstep.errors import DataError
from cnnstep.fileio import write_npz
from cnnstep.nn.io import json_array, model_arrays, read_header, read_npz
from cnnstep.nn.model import Sequential, model_from_arrays
from cnnstep.nn.optimizers import Optimizer, optimizer_from_config


def save_checkpoint(
    path: str | Path,
    model: Sequential,
    optimizer: Optimizer,
    state: dict,
    arrays: dict[str, np.ndarray] | None = None,
    metadata: dict | None = None,
) -> None:
    """Write everything needed to continue training exactly where it stopped.

    Parameters
    ----------
    path : str or Path
    model : Sequential
    optimizer : Optimizer
    state : dict
        JSON-able training progress (epoch, batch, metrics so far, run settings).
    arrays : dict of ndarray, optional
        Extra arrays of the training progress (e.g. the epoch's shuffling order).
    metadata : dict, optional
        Stored as the model's metadata.
    """
    opt_scalars, opt_arrays = optimizer.state_dict()
    header = {
        "state": state,
        "optimizer": opt_scalars,
        "rng": model.rng.bit_generator.state,
    }
    out = model_arrays(model.get_config(), model.named_arrays(), metadata)
    out["__checkpoint__"] = json_array(header)
    out.update({f"optimizer/{k}": v for k, v in opt_arrays.items()})
    out.update({f"state/{k}": v for k, v in (arrays or {}).items()})
    write_npz(path, out)


def load_checkpoint(
    path: str | Path,
) -> tuple[Sequential, Optimizer, dict, dict[str, np.ndarray], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    model : Sequential
        With its weights and its random generator's state restored.
    optimizer : Optimizer
        With its settings, step count and slot arrays restored.
    state : dict
        The training progress given to :func:`save_checkpoint`.
    arrays : dict of ndarray
        The extra arrays given to :func:`save_checkpoint`.
    metadata : dict
    """
    path = Path(path)
    raw = read_npz(path, "cnnstep checkpoint")
    model, metadata = model_from_arrays(raw, path)
    header = read_header(raw, "__checkpoint__", path)
    try:
        opt_scalars = header["optimizer"]
        optimizer = optimizer_from_config(opt_scalars["type"], opt_scalars["config"])
        opt_arrays = {k[len("optimizer/"):]: v for k, v in raw.items()
                      if k.startswith("optimizer/")}
        optimizer.load_state_dict(opt_scalars, opt_arrays, model.parameters())
        model.rng.bit_generator.state = header["rng"]
        state = header["state"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: damaged checkpoint ({exc})") from exc
    arrays = {k[len("state/"):]: v for k, v in raw.items() if k.startswith("state/")}
    return model, optimizer, state, arrays, metadata

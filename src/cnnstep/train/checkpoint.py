"""The checkpoint file: a model file plus everything needed to continue training exactly.

Beside the model file's entries (:mod:`cnnstep.nn.io`) it holds ``__checkpoint__`` (JSON: the
run's settings (:class:`~cnnstep.train.state.TrainConfig`), its progress
(:class:`~cnnstep.train.state.TrainState`), the number of training examples, the optimizer's
settings, the random generator's state and, for ``cnnstep train``, the command's settings), the
optimizer's arrays (``optimizer/m.0``, ...) and the progress arrays (``state/perm``, the best
weights ``state/best/<name>``). Written atomically, read without pickle.

Everything read is checked against the schema below before it is used (:func:`load_checkpoint`):
a checkpoint someone edited gives one :class:`~cnnstep.errors.DataError` naming the field,
never a traceback and never a run that silently does something else. Thread counts read from
the file are capped at the CPUs of this machine. Checkpoints of the first format (progress and
settings under ``state``, ``test_accuracy`` in the history) are read too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.errors import DataError
from cnnstep.fileio import write_npz
from cnnstep.nn.io import json_array, model_arrays, read_header, read_npz
from cnnstep.nn.model import Sequential, model_from_arrays
from cnnstep.nn.optimizers import OPTIMIZERS, Optimizer, optimizer_from_config
from cnnstep.train.parallel import machine_cpus
from cnnstep.train.state import STATE_FIELDS, TrainConfig, TrainState

#: The layout written by :func:`save_checkpoint`.
FORMAT = 2
#: What the callbacks keep in ``TrainState.extra`` (see :mod:`cnnstep.train.callbacks`).
EXTRA_KEYS = ("early_stopping", "reduce_lr")


@dataclass
class Checkpointed:
    """What a checkpoint holds, checked (:func:`load_checkpoint`)."""

    model: Sequential
    optimizer: Optimizer
    config: TrainConfig
    state: TrainState
    m: int | None  # training examples of the run (None in first-format files)
    settings: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    #: what was changed while reading (a thread count capped), for the user to be told
    notes: list[str] = field(default_factory=list)


def save_checkpoint(path: str | Path, model: Sequential, optimizer: Optimizer,
                    config: TrainConfig, state: TrainState, m: int, *,
                    settings: dict | None = None, metadata: dict | None = None) -> None:
    """Write everything needed to continue training exactly where it stopped.

    Parameters
    ----------
    path : str or Path
    model : Sequential
    optimizer : Optimizer
    config : TrainConfig
    state : TrainState
    m : int
        The number of training examples (a resumed run must have as many).
    settings : dict, optional
        JSON-able settings of whoever runs the training (``cnnstep train``'s options).
    metadata : dict, optional
        Stored as the model's metadata.
    """
    opt_scalars, opt_arrays = optimizer.state_dict()
    header = {
        "format": FORMAT,
        "config": config.to_json(),
        "progress": state.to_json(),
        "m": int(m),
        "settings": settings or {},
        "optimizer": opt_scalars,
        "rng": model.rng.bit_generator.state,
    }
    arrays = dict(state.arrays)
    if state.batch and state.perm is not None:
        arrays["perm"] = state.perm
    out = model_arrays(model.get_config(), model.named_arrays(), metadata)
    out["__checkpoint__"] = json_array(header)
    out.update({f"optimizer/{k}": v for k, v in opt_arrays.items()})
    out.update({f"state/{k}": v for k, v in arrays.items()})
    write_npz(path, out)


def checkpoint_saver(path: str | Path, model: Sequential, optimizer: Optimizer,
                     config: TrainConfig, m: int, *, settings: dict | None = None,
                     metadata: dict | None = None) -> Callable[[TrainState], None]:
    """``save(state)`` for :class:`~cnnstep.train.callbacks.Checkpoint`: writes ``path``."""
    def save(state: TrainState) -> None:
        save_checkpoint(path, model, optimizer, config, state, m, settings=settings,
                        metadata=metadata)
    return save


def load_checkpoint(path: str | Path) -> Checkpointed:
    """Read and check a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    Checkpointed
        The model (weights and random generator restored), the optimizer (settings, step count
        and slot arrays restored), the run's config and progress, the command's settings, the
        model's metadata.

    Raises
    ------
    DataError
        One line naming the file and the first thing wrong with it.
    """
    path = Path(path)
    raw = read_npz(path, "cnnstep checkpoint")
    model, metadata = model_from_arrays(raw, path)
    header = read_header(raw, "__checkpoint__", path)
    arrays = {k[len("state/"):]: v for k, v in raw.items() if k.startswith("state/")}
    opt_arrays = {k[len("optimizer/"):]: v for k, v in raw.items() if k.startswith("optimizer/")}
    try:
        header = _upgrade(header)
        notes: list[str] = []
        config = _check_config(header.get("config"), notes)
        m = None if header.get("first_format") else check_int(header.get("m"), "m", 1)
        state = check_progress(header.get("progress"), arrays, config, m, model)
        optimizer = _check_optimizer(header.get("optimizer"), opt_arrays, model)
        _check_rng(header.get("rng"), model)
        settings = header.get("settings", {})
        if not isinstance(settings, dict):
            raise ValueError(f"settings must be a mapping, got {type(settings).__name__}")
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"{path}: damaged checkpoint ({' '.join(str(exc).split())})") from None
    return Checkpointed(model, optimizer, config, state, m, settings, metadata, notes)


# ---------------------------------------------------------------------------- the schema

def check_int(value: Any, name: str, low: int = 0, high: float = math.inf) -> int:
    """``value`` if it is an integer (not a bool) in ``[low, high]``; ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        bound = f"in [{low}, {int(high)}]" if high < math.inf else f">= {low}"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return value


def check_number(value: Any, name: str, low: float = 0.0, high: float = math.inf,
                 optional: bool = False) -> float | None:
    """``value`` if it is a finite number in ``[low, high]`` (or None when ``optional``)."""
    if value is None and optional:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not low <= value <= high):
        raise ValueError(f"{name} must be a finite number in [{low:g}, {high:g}], "
                         f"got {value!r}")
    return float(value)


def _check_config(data: Any, notes: list[str]) -> TrainConfig:
    try:
        config = TrainConfig.from_json(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config: {exc}") from None
    cpus = machine_cpus()
    if config.threads > cpus:
        notes.append(f"the checkpoint's {config.threads} threads capped at this machine's "
                     f"{cpus} CPUs")
        config.threads = cpus
    return config


def _check_record(record: Any, number: int) -> None:
    where = f"history[{number - 1}]"
    if not isinstance(record, dict):
        raise ValueError(f"{where} must be a mapping, got {type(record).__name__}")
    if record.get("epoch") != number or isinstance(record.get("epoch"), bool):
        raise ValueError(f"{where}.epoch must be {number}, got {record.get('epoch')!r}")
    check_number(record.get("loss"), f"{where}.loss")
    check_number(record.get("train_accuracy"), f"{where}.train_accuracy", high=1.0)
    check_number(record.get("val_accuracy"), f"{where}.val_accuracy", high=1.0, optional=True)
    check_number(record.get("val_loss"), f"{where}.val_loss", optional=True)
    check_number(record.get("lr"), f"{where}.lr", optional=True)
    check_number(record.get("seconds"), f"{where}.seconds")


def _check_extra(extra: Any, history: list[dict]) -> None:
    if not isinstance(extra, dict):
        raise ValueError(f"extra must be a mapping, got {type(extra).__name__}")
    for key, kept in extra.items():
        if key not in EXTRA_KEYS:
            raise ValueError(f"extra.{key} is not something cnnstep keeps")
        if not isinstance(kept, dict) or set(kept) != {"best", "wait"}:
            raise ValueError(f"extra.{key} must be a mapping of best and wait")
        check_int(kept["wait"], f"extra.{key}.wait", 0, len(history))
        best = kept["best"]
        if best is None:
            continue
        if not isinstance(best, dict):
            raise ValueError(f"extra.{key}.best must be a mapping")
        check_number(best.get("val_accuracy"), f"extra.{key}.best.val_accuracy", high=1.0)
        check_number(best.get("val_loss"), f"extra.{key}.best.val_loss")
        if key == "early_stopping":
            check_int(best.get("epoch"), f"extra.{key}.best.epoch", 1, len(history))


def check_progress(data: Any, arrays: dict[str, np.ndarray], config: TrainConfig,
                   m: int | None, model: Sequential) -> TrainState:
    """The stored progress and its arrays, checked field by field; ValueError otherwise."""
    if not isinstance(data, dict):
        raise ValueError(f"progress must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(STATE_FIELDS))
    if unknown:
        raise ValueError(f"progress has unknown fields {', '.join(unknown)}")
    epoch = check_int(data["epoch"], "progress.epoch", 0, config.epochs)
    batch = check_int(data["batch"], "progress.batch")
    step = check_int(data["step"], "progress.step")
    history = data["history"]
    if not isinstance(history, list) or len(history) != epoch:
        got = (f"{len(history)} records" if isinstance(history, list)
               else type(history).__name__)
        raise ValueError(f"history must be a list of {epoch} epoch records, got {got}")
    for number, record in enumerate(history, start=1):
        _check_record(record, number)
    # counts of the epoch in progress (left from the last epoch when none is)
    seen = check_int(data["seen"], "progress.seen", 0,
                     batch * config.batch_size if batch else math.inf)
    check_int(data["correct"], "progress.correct", 0, seen)
    check_number(data["loss_sum"], "progress.loss_sum")
    check_number(data["seconds"], "progress.seconds")
    check_number(data.get("lr_scale", 1.0), "progress.lr_scale", 1e-12, 1.0)
    _check_extra(data.get("extra", {}), history)
    stopped = data.get("stopped")
    if stopped is not None and not isinstance(stopped, str):
        raise ValueError(f"progress.stopped must be text or null, got {stopped!r}")
    if m is not None:
        n_batches = math.ceil(m / config.batch_size)
        # n_batches: every batch done, the epoch's validation and record not yet
        check_int(batch, "progress.batch", 0, n_batches)
        if step != epoch * n_batches + batch:
            raise ValueError(f"progress.step {step} disagrees with {epoch} epochs of "
                             f"{n_batches} batches and {batch} batches more")
    _check_arrays(arrays, batch, m, model)
    return TrainState.from_json(data, arrays)


def _check_arrays(arrays: dict[str, np.ndarray], batch: int, m: int | None,
                  model: Sequential) -> None:
    perm = arrays.get("perm")
    if batch and perm is None:
        raise ValueError("state/perm (the epoch's order) is missing for an epoch in progress")
    if perm is not None:
        if perm.ndim != 1 or perm.dtype.kind not in "iu":
            raise ValueError(f"state/perm must be a 1-D array of integers, got {perm.dtype} "
                             f"of shape {perm.shape}")
        if m is not None and perm.shape[0] != m:
            raise ValueError(f"state/perm has {perm.shape[0]} entries for {m} examples")
        if not np.array_equal(np.sort(perm), np.arange(perm.shape[0])):
            raise ValueError("state/perm is not a permutation of the examples")
    weights = model.named_arrays()
    for key, arr in arrays.items():
        if key == "perm":
            continue
        name = key[len("best/"):] if key.startswith("best/") else None
        if name not in weights:
            raise ValueError(f"state/{key} is not something cnnstep keeps")
        if arr.shape != weights[name].shape or arr.dtype != weights[name].dtype:
            raise ValueError(f"state/{key} must be {weights[name].dtype} of shape "
                             f"{weights[name].shape}, got {arr.dtype} of shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"state/{key} holds NaN or infinity")


def _check_optimizer(scalars: Any, arrays: dict[str, np.ndarray], model: Sequential) -> Optimizer:
    if not isinstance(scalars, dict) or set(scalars) != {"type", "config", "t"}:
        raise ValueError("optimizer must be a mapping of type, config and t")
    kind, config = scalars["type"], scalars["config"]
    if not isinstance(kind, str) or kind.lower() not in OPTIMIZERS:
        raise ValueError(f"optimizer.type must be one of {', '.join(OPTIMIZERS)}, got {kind!r}")
    if not isinstance(config, dict):
        raise ValueError("optimizer.config must be a mapping")
    for key, value in config.items():
        if not isinstance(value, bool):
            check_number(value, f"optimizer.config.{key}", high=1e6)
    check_int(scalars["t"], "optimizer.t", 0, 2**53)
    for key, arr in arrays.items():
        if arr.dtype.kind != "f" or not np.isfinite(arr).all():
            raise ValueError(f"optimizer/{key} must hold finite floats")
    try:
        optimizer = optimizer_from_config(kind, config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"optimizer.config: {exc}") from None
    optimizer.load_state_dict(scalars, arrays, model.parameters())
    return optimizer


def _check_rng(state: Any, model: Sequential) -> None:
    generator = model.rng.bit_generator
    name = type(generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != name:
        raise ValueError(f"rng must be the state of a {name} generator")
    probe = type(generator)()
    try:
        probe.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"rng is not a valid {name} state ({exc})") from None
    generator.state = probe.state


def _upgrade(header: dict) -> dict:
    """A first-format header (``state``: progress and settings) in today's layout."""
    if header.get("format") == FORMAT:
        return header
    if "format" in header or not isinstance(header.get("state"), dict):
        raise ValueError(f"unknown checkpoint format {header.get('format')!r}")
    old, settings = header["state"].get("progress"), header["state"].get("settings")
    if not isinstance(old, dict) or not isinstance(settings, dict):
        raise ValueError("state must hold progress and settings mappings")
    history = old.get("history")
    if isinstance(history, list):
        history = [_renamed(h) for h in history]
    config = {"epochs": settings.get("epochs"), "batch_size": settings.get("batch_size"),
              "schedule": settings.get("schedule"), "augment_shift": settings.get("augment"),
              "lr": settings.get("lr"), "threads": settings.get("threads") or 1}
    return {"format": FORMAT, "config": config, "progress": {**old, "history": history},
            "m": None, "first_format": True, "settings": settings,
            "optimizer": header.get("optimizer"), "rng": header.get("rng")}


def _renamed(record: Any) -> Any:
    """An epoch record of the first format: ``test_accuracy`` was the validation accuracy."""
    if isinstance(record, dict) and "test_accuracy" in record:
        record = {("val_accuracy" if k == "test_accuracy" else k): v for k, v in record.items()}
    return record

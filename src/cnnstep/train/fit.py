"""``fit``: train a model in Python, as ``cnnstep train`` does, with resume and ``epochs="auto"``.

``model.fit(x, y, ...)`` is ``cnnstep.train.fit(model, x, y, ...)``: the model names this
function (:attr:`cnnstep.nn.model.Sequential.trainer`) and this room does the training, as
in Keras the trainer and its callbacks live apart from the layers. :func:`prepare` is the part
``cnnstep train`` shares: it turns the caller's settings, or a checkpoint and the changes
allowed on resume, into a run (:class:`Prepared`) for :func:`cnnstep.train.loop.train`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.data.dataset import stratified_split
from cnnstep.nn.optimizers import Adam
from cnnstep.train.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochLog,
    ProgressBar,
    ReduceLROnPlateau,
    StopOnCtrlC,
    TimeLimit,
)
from cnnstep.train.checkpoint import Checkpointed, checkpoint_saver, load_checkpoint
from cnnstep.train.inputs import check_fit_inputs
from cnnstep.train.loop import train
from cnnstep.train.parallel import default_threads
from cnnstep.train.pool import WorkerPool
from cnnstep.train.state import TrainConfig, TrainState

#: ``epochs="auto"``: at most this many epochs ...
AUTO_MAX_EPOCHS = 150
#: ... ending after this many without a better validation accuracy (the best weights kept), and
#: no fewer than make :data:`AUTO_PATIENCE_STEPS` training steps (a few hundred images are a
#: handful of batches per epoch: a small network may take dozens of epochs to leave the
#: majority class) ...
AUTO_PATIENCE = 12
AUTO_PATIENCE_STEPS = 300
#: ... judging each epoch by the mean validation accuracy of as many epochs as hold this many
#: validation images (one epoch for 150 or more; a few dozen images move the accuracy by whole
#: images from epoch to epoch), at most :data:`AUTO_SMOOTHING` epochs and half the patience ...
AUTO_SMOOTHING_IMAGES = 150
AUTO_SMOOTHING = 5
#: ... or when this many seconds of training are spent (12 minutes: with loading, the last
#: evaluation and the plots, ``cnnstep train`` ends within 15) ...
AUTO_TIME_LIMIT = 720.0
#: ... validating on this fraction of the training data when no validation data is given.
AUTO_VALIDATION_SPLIT = 0.15
#: The seed of the stratified split that carves the validation part (fixed: a resumed run
#: must hold out the same examples).
SPLIT_SEED = 0


class History(list):
    """The per-epoch metrics of a run (a list of dicts), with how it ended.

    Attributes
    ----------
    stopped : str or None
        Why the run ended before its last epoch (early stopping, time limit), else None.
    best_epoch : int or None
        The epoch whose weights the model holds after early stopping, else None.
    """

    def __init__(self, state: TrainState) -> None:
        super().__init__(state.history)
        self.stopped = state.stopped
        kept = state.extra.get("early_stopping")
        self.best_epoch = kept["best"]["epoch"] if kept and kept["best"] else None


def auto_patience(m: int, batch_size: int) -> int:
    """The patience of ``epochs="auto"`` for ``m`` training examples in batches of
    ``batch_size``: :data:`AUTO_PATIENCE` epochs, or :data:`AUTO_PATIENCE_STEPS` steps if that is
    more epochs."""
    return max(AUTO_PATIENCE, math.ceil(AUTO_PATIENCE_STEPS / math.ceil(m / batch_size)))


def auto_smoothing(n_val: int, patience: int) -> int:
    """The smoothing of ``epochs="auto"`` for ``n_val`` validation images: enough epochs to
    hold :data:`AUTO_SMOOTHING_IMAGES` of them, at most :data:`AUTO_SMOOTHING` and
    ``patience // 2`` (and at least 1)."""
    want = math.ceil(AUTO_SMOOTHING_IMAGES / max(1, n_val))
    return max(1, min(want, AUTO_SMOOTHING, patience // 2))


def auto_config(given: dict, n_val: int | None, m: int) -> TrainConfig:
    """The run's config from the caller's settings (None: not given), ``epochs="auto"``
    expanded (see :data:`AUTO_MAX_EPOCHS` and the constants after it) for ``m`` examples
    (the validation part not yet held out) and ``n_val`` given validation examples (None:
    none given)."""
    settings = {k: v for k, v in given.items() if v is not None}
    if settings.get("epochs") == "auto":
        settings["epochs"] = AUTO_MAX_EPOCHS
        settings.setdefault("patience", "auto")
        settings.setdefault("smoothing", "auto")
        settings.setdefault("time_limit", AUTO_TIME_LIMIT)
    elif isinstance(settings.get("epochs"), str):
        raise ValueError(f"epochs must be a positive integer or 'auto', got "
                         f"{settings['epochs']!r}")
    if settings.get("patience") and n_val is None:
        settings.setdefault("validation_split", AUTO_VALIDATION_SPLIT)
    held_out = round(m * settings.get("validation_split", 0.0)) if n_val is None else 0
    if settings.get("patience") == "auto":
        settings["patience"] = auto_patience(max(1, m - held_out),
                                             settings.get("batch_size", 64))
    if settings.get("smoothing") == "auto":
        settings["smoothing"] = (auto_smoothing(n_val or held_out, settings["patience"])
                                 if settings.get("patience") else 1)
    settings.setdefault("schedule", "constant")
    settings.setdefault("threads", default_threads())
    return TrainConfig(**settings)


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, y_train, x_val, y_val``: a stratified ``fraction`` of ``(x, y)`` held out,
    always the same examples for the same labels (:data:`SPLIT_SEED`)."""
    train_idx, val_idx = stratified_split(y, fraction, SPLIT_SEED)
    if not len(val_idx) or not len(train_idx):
        raise ValueError(f"{len(y)} examples are too few to hold out a validation part of "
                         f"{fraction:g}")
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


@dataclass
class Prepared:
    """A run ready for :func:`cnnstep.train.loop.train`."""

    model: Any
    optimizer: Any
    config: TrainConfig
    state: TrainState
    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None

    def standard_callbacks(self) -> list[Callback]:
        """Early stopping with its learning-rate halving, and the time limit, as the config
        asks."""
        hooks: list[Callback] = []
        if self.config.patience is not None:
            smoothing = self.config.smoothing
            hooks += [ReduceLROnPlateau(max(1, self.config.patience // 2), smoothing=smoothing),
                      EarlyStopping(self.config.patience, smoothing=smoothing)]
        if self.config.time_limit is not None:
            hooks.append(TimeLimit(self.config.time_limit))
        return hooks


def prepare(model: Any, optimizer: Any, x: np.ndarray, y: np.ndarray,
            validation: tuple[np.ndarray, np.ndarray] | None, given: dict,
            resumed: Checkpointed | None = None) -> Prepared:
    """A fresh run of ``model`` with the settings ``given`` (None: not given), or the run
    ``resumed`` from a checkpoint with the changes it allows
    (:data:`~cnnstep.train.state.CHANGEABLE_ON_RESUME`).

    Raises
    ------
    ValueError
        A setting a resumed run cannot change differs, the run already did ``epochs`` epochs
        or ended, or the data has another number of examples than the checkpoint's run.
    """
    if resumed is None:
        config = auto_config(given, len(validation[1]) if validation is not None else None,
                             len(y))
        state = TrainState()
    else:
        changes = {k: v for k, v in given.items() if v is not None}
        if changes.get("epochs") == "auto":
            changes.pop("epochs")
        config = resumed.config.resumed_with(changes)
        state = resumed.state
        if state.stopped:
            raise ValueError(f"the checkpoint's run has ended ({state.stopped}); there is "
                             "nothing to resume")
        if config.epochs <= state.epoch:
            raise ValueError(f"epochs={config.epochs}: the checkpoint has already done "
                             f"{state.epoch}; give more to continue")
    x_val, y_val = validation if validation is not None else (None, None)
    if validation is None and config.validation_split is not None:
        x, y, x_val, y_val = split_validation(x, y, config.validation_split)
    if resumed is not None and resumed.m is not None and resumed.m != len(y):
        raise ValueError(f"the checkpoint's run trained on {resumed.m} examples, not "
                         f"{len(y)}: resume it with the same data")
    return Prepared(model, optimizer, config, state, x, y, x_val, y_val)


def _adopt(model: Any, optimizer: Any, resumed: Checkpointed) -> Any:
    """Put the checkpoint's weights and generator state into ``model``; the optimizer to use."""
    if not model.built:
        model.build(resumed.model.input_shape)
    ours, theirs = model.get_config(), resumed.model.get_config()
    if (ours["layers"], ours["input_shape"]) != (theirs["layers"], theirs["input_shape"]):
        raise ValueError("resume: the checkpoint holds another model (layers or input shape "
                         "differ); build the same model, or load it from the checkpoint")
    for name, arr in model.named_arrays().items():
        arr[...] = resumed.model.named_arrays()[name]
    model.rng.bit_generator.state = resumed.model.rng.bit_generator.state
    if optimizer is not None and type(optimizer) is not type(resumed.optimizer):
        raise ValueError(f"resume: the checkpoint's optimizer is "
                         f"{type(resumed.optimizer).__name__}, not {type(optimizer).__name__}")
    return resumed.optimizer


def fit(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int | str | None = None,
    batch_size: int | None = None,
    optimizer: Any = None,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    validation_split: float | None = None,
    schedule: str | None = None,
    augment_shift: int | None = None,
    augment_flip: bool | None = None,
    patience: int | None = None,
    smoothing: int | str | None = None,
    time_limit: float | None = None,
    threads: int | None = None,
    parallel: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint: str | Path | None = None,
    resume: str | Path | None = None,
    keep_workers: bool | WorkerPool = False,
) -> History:
    """Train ``model`` on ``(x, y)`` (``model.fit`` calls this; ``cnnstep train``'s loop).

    Parameters
    ----------
    model : Sequential
    x : ndarray of shape (m, n_H, n_W, n_C)
        Float pixels, no NaN; ``uint8`` is refused (divide by 255 first).
    y : ndarray of shape (m,) of int, or of shape (m, K) one-hot
        Class indices in ``0..K-1`` for a model with K outputs.
    epochs : int or "auto", default 1
        ``"auto"``: until ``patience`` (default :func:`auto_patience`) epochs bring no better
        validation accuracy, keeping the best epoch's weights; at most :data:`AUTO_MAX_EPOCHS`
        epochs and ``time_limit`` (default :data:`AUTO_TIME_LIMIT`) seconds; validating on
        ``validation_data`` or else on ``validation_split`` (default
        :data:`AUTO_VALIDATION_SPLIT`) of ``(x, y)``, held out.
    batch_size, schedule, augment_shift, augment_flip, patience, smoothing, time_limit
        As :class:`~cnnstep.train.state.TrainConfig` says; defaults 64, ``"constant"``, 0,
        False, None, 1 (:func:`auto_smoothing` with ``epochs="auto"``), None.
    validation_split, threads, parallel
        Likewise; defaults None, the CPUs at most 4, ``"auto"``.
    optimizer : Optimizer, default Adam(lr=1e-3)
    validation_data : (x_val, y_val), optional
        Evaluated after each epoch (``val_loss``, ``val_accuracy``).
    progress, log, callbacks : bool, callable, sequence of Callback
        A progress bar per epoch (tqdm, a terminal); ``log(line)`` after each epoch; more
        callbacks (:mod:`cnnstep.train.callbacks`), run after those.
    checkpoint : str or Path, optional
        Write a checkpoint there after every epoch and on Ctrl-C (the first Ctrl-C then stops
        after the current batch).
    resume : str or Path
        Continue the run of this checkpoint: ``model`` (the same layers) gets its weights; the
        optimizer, progress and settings are the checkpoint's, of which only ``epochs``,
        ``threads``, ``parallel`` and ``time_limit`` may be given anew. The result is that of
        a run never interrupted.
    keep_workers : bool or WorkerPool, default False
        Worker processes stop when ``fit`` returns; ``True`` keeps them for the next ``fit``
        (until :func:`cnnstep.train.pool.close_idle_workers`), a ``WorkerPool`` in that pool.

    Returns
    -------
    History
        Dicts of ``epoch``, ``loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy`` (None
        without validation), ``lr``, ``seconds``; with ``stopped`` and ``best_epoch``.
    """
    given = {"epochs": epochs, "batch_size": batch_size, "schedule": schedule,
             "augment_shift": augment_shift, "augment_flip": augment_flip,
             "patience": patience, "smoothing": smoothing, "time_limit": time_limit,
             "threads": threads, "parallel": parallel, "validation_split": validation_split}
    x, y, validation = _checked(model, x, y, validation_data)
    run = _start(model, optimizer, x, y, validation, given, resume)
    hooks = _callbacks(run, progress, log, callbacks, checkpoint)
    state = train(model, run.optimizer, run.x, run.y, run.x_val, run.y_val, run.config,
                  state=run.state, callbacks=hooks, workers=_workers(keep_workers))
    return History(state)


def _start(model: Any, optimizer: Any, x: np.ndarray, y: np.ndarray,
           validation: tuple[np.ndarray, np.ndarray] | None, given: dict,
           resume: str | Path | None) -> Prepared:
    """:func:`prepare` for :func:`fit`: the checkpoint ``resume`` read and adopted, one epoch
    and Adam(1e-3) when not given."""
    resumed = load_checkpoint(resume) if resume is not None else None
    if resumed is not None:
        optimizer = _adopt(model, optimizer, resumed)
    elif given["epochs"] is None:
        given = {**given, "epochs": 1}
    return prepare(model, optimizer if optimizer is not None else Adam(1e-3), x, y, validation,
                   given, resumed)


def _workers(keep_workers: Any) -> WorkerPool | bool | None:
    """``train``'s ``workers`` for ``fit``'s ``keep_workers``."""
    if not isinstance(keep_workers, (bool, WorkerPool)):
        raise TypeError(f"keep_workers: expected True, False or a WorkerPool, got "
                        f"{keep_workers!r}")
    return keep_workers if isinstance(keep_workers, WorkerPool) else (keep_workers or None)


def _callbacks(run: Prepared, progress: bool, log: Callable[[str], None] | None,
               callbacks: Sequence[Callback], checkpoint: str | Path | None) -> list[Callback]:
    hooks = run.standard_callbacks()
    hooks += [ProgressBar()] if progress else []
    hooks += [EpochLog(log)] if log is not None else []
    hooks += list(callbacks)
    if checkpoint is not None:
        hooks = [StopOnCtrlC(), *hooks, Checkpoint(checkpoint_saver(
            checkpoint, run.model, run.optimizer, run.config, len(run.y)))]
    return hooks


def _checked(model: Any, x: Any, y: Any, validation_data: Any
             ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """``x``, ``y`` and the validation pair checked and in the model's dtype (building an
    unbuilt model: its number of outputs is known then)."""
    x, y = check_fit_inputs(x, y, None)
    x = model.prepare_input(x)
    shape = getattr(model, "output_shape", None)
    n_out = max(int(shape[-1]), 2) if shape else None  # one output: a binary classifier
    x, y = check_fit_inputs(x, y, n_out)
    if validation_data is None:
        return x, y, None
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
        raise ValueError("validation_data must be a pair (x_val, y_val)")
    x_val, y_val = check_fit_inputs(validation_data[0], validation_data[1], n_out,
                                    x_name="validation_data[0]", y_name="validation_data[1]")
    return x, y, (model.prepare_input(x_val), y_val)

"""A training job, start to end: what ``cnnstep train`` does, with the printing left to it.

:func:`run_job` claims the output folder (:mod:`~cnnstep.train.job.folder`), reads the data,
builds the model from the settings and the data (:mod:`~cnnstep.train.job.recipe`) or resumes
the checkpoint, trains (:func:`cnnstep.train.fit.prepare`, :func:`cnnstep.train.loop.train`),
and writes the model, the metrics and the plots. It reports through ``say(line)``; the first
line says what was chosen and the bounds of the run, the last compares the test accuracy with
always answering the most common class.
"""

from __future__ import annotations

import json
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnstep.data.builtin import BUILTINS, load_data
from cnnstep.data.dataset import Dataset
from cnnstep.errors import UserError
from cnnstep.fileio import atomic_write
from cnnstep.train.callbacks import (
    Checkpoint,
    EpochLog,
    NonFiniteLossError,
    ProgressBar,
    StopOnCtrlC,
    format_epoch,
)
from cnnstep.train.checkpoint import Checkpointed, checkpoint_saver, load_checkpoint
from cnnstep.train.fit import Prepared, prepare
from cnnstep.train.job import settings as js
from cnnstep.train.job.folder import CHECKPOINT, METRICS, MODEL, claim_folder, remove_stale
from cnnstep.train.job.recipe import DataShape, choose, recipe_for
from cnnstep.train.loop import TrainingInterruptedError, train

Say = Callable[[str], None]


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C ended the job; its checkpoint is saved. ``message`` says how to continue."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class JobResult:
    """What a finished job reports."""

    out: Path
    test_accuracy: float | None
    majority_class: str | None
    majority_accuracy: float | None
    metrics: dict = field(default_factory=dict)


def default_out(given: dict, data: Dataset) -> Path:
    """``runs/<arch>-<data name>``: the architecture given, or the one chosen for ``data``."""
    spec = str(given.get("data") or js.DEFAULTS["data"])
    name = Path(spec).stem if spec not in BUILTINS else spec
    arch = given.get("arch")
    if arch is None:
        arch = recipe_for(DataShape(*data.input_shape, len(data.y_train), data.n_classes)).arch
    return Path("runs") / f"{arch}-{name or 'data'}"


_DATA_KEYS = ("data", "test_data", "image_size", "test_fraction")


def load_job_data(settings: dict) -> Dataset:
    """The data the settings name; the built-ins refuse a test file and an image size."""
    data = settings["data"]
    if data in BUILTINS:
        for key in ("test_data", "image_size"):
            if settings[key] is not None:
                raise UserError(f"{js.option(key)} cannot be used with the built-in data set "
                                f"{data} (it has its own test part and image size)")
    size = settings["image_size"]
    return load_data(data, test_data=settings["test_data"],
                     image_size=tuple(size) if size else None,
                     test_fraction=settings["test_fraction"])


def check_fits(model: Any, data: Dataset, label: str) -> None:
    """The data must fit the model's input shape and number of classes."""
    if tuple(model.input_shape) != data.input_shape:
        h, w, c = model.input_shape
        raise UserError(
            f"{label} takes {h}x{w} images with {c} channel(s), but {data.name} has "
            f"{'x'.join(map(str, data.input_shape[:2]))} images with {data.input_shape[2]} "
            "channel(s); pass --image-size or other data")
    if data.n_classes > model.n_classes:
        raise UserError(f"{label} predicts {model.n_classes} classes but {data.name} "
                        f"has {data.n_classes}")


def _resumed(folder: Path, given: dict) -> tuple[Checkpointed, dict, list[str]]:
    path = folder / CHECKPOINT
    if not path.is_file():
        raise UserError(f"--resume: no checkpoint {path} (train without --resume first)")
    ck = load_checkpoint(path)
    notes = list(ck.notes)
    try:
        stored = js.check_stored(js.upgrade_stored(ck.settings), notes)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: damaged checkpoint ({exc})") from None
    return ck, js.merge(given, stored), list(dict.fromkeys(notes))  # each note once


def _check_resumable(ck: Checkpointed, settings: dict, folder: Path) -> None:
    done = ck.state.epoch
    if ck.state.stopped:
        raise UserError(f"{folder / CHECKPOINT}: the run ended after epoch {done} "
                        f"({ck.state.stopped}); start a new one with --overwrite or another "
                        "--out")
    if settings["epochs"] != "auto" and settings["epochs"] <= done:
        raise UserError(f"--epochs {settings['epochs']}: the checkpoint has already done "
                        f"{done} epoch{'s' if done != 1 else ''}; give --epochs more than "
                        f"{done} to continue")


def _build(settings: dict, data: Dataset) -> tuple[Any, Any]:
    from cnnstep.nn.architectures import build_architecture
    from cnnstep.nn.optimizers import OPTIMIZERS

    try:
        model = build_architecture(settings["arch"], data.input_shape, data.n_classes,
                                   seed=settings["seed"], class_names=data.class_names)
    except ValueError as exc:
        raise UserError(f"--arch {settings['arch']} does not fit {data.name}: {exc}") from exc
    return model, OPTIMIZERS[settings["optimizer"]](lr=settings["lr"])


def _check_augment(settings: dict, data: Dataset) -> None:
    most = max(1, min(data.input_shape[:2]) // 4)
    if settings["augment"]["shift"] > most:
        raise UserError(
            f"--augment {js.format_augment(settings['augment'])}: shifts of more than a "
            f"quarter of the "
            f"{data.input_shape[0]}x{data.input_shape[1]} images move them out of the frame; "
            f"use at most {most}")


def _prepare(folder: Path, given: dict, resume: bool, loaded: tuple[dict, Dataset] | None
             ) -> tuple[Prepared, dict, Dataset, list[str]]:
    """The run: settings resolved, data read (or the data ``loaded`` for these settings),
    model built or resumed."""
    ck: Checkpointed | None = None
    notes: list[str] = []
    if resume:
        ck, settings, notes = _resumed(folder, given)
    else:
        settings = js.merge(given, None)
    same = loaded is not None and all(loaded[0][k] == settings[k] for k in _DATA_KEYS)
    data = loaded[1] if loaded is not None and same else load_job_data(settings)
    if ck is None:
        shape = DataShape(*data.input_shape, len(data.y_train), data.n_classes)
        settings, chosen, recipe = choose(settings, shape)
        settings = js.resolve_run_settings({**settings, "chosen": chosen,
                                            "recipe": recipe.name})
        model, optimizer = _build(settings, data)
        loop = js.loop_settings(settings)
    else:
        _check_resumable(ck, settings, folder)
        check_fits(ck.model, data, f"the checkpoint {folder / CHECKPOINT}")
        model, optimizer = ck.model, ck.optimizer
        optimizer.lr = settings["lr"]
        loop = js.resume_changes(settings, given)
    _check_augment(settings, data)
    validation = None if settings["patience"] else (data.x_test, data.y_test)
    try:
        run = prepare(model, optimizer, data.x_train, data.y_train, validation, loop, ck)
    except ValueError as exc:
        raise UserError(f"{folder / CHECKPOINT if ck else 'settings'}: {exc}") from None
    settings["patience"] = run.config.patience  # "auto" is a number once the data is known
    return run, settings, data, notes


def first_line(run: Prepared, settings: dict, data: Dataset, resumed: bool,
               notes: list[str]) -> str:
    """What is trained on what, what was chosen, and the bounds of the run."""
    h, w, c = data.input_shape
    chosen = [_SHOWN.get(k, k) for k in settings.get("chosen") or []]
    why = (f"; {', '.join(chosen)} chosen for {settings.get('recipe', 'this data')}"
           if chosen and not resumed else "")
    cfg, state = run.config, run.state
    if settings["epochs"] == "auto":
        mean = f" (mean of {cfg.smoothing} epochs)" if cfg.smoothing > 1 else ""
        stop = (f"epochs auto: until {cfg.patience} epochs bring no better accuracy{mean} on "
                f"{len(run.y_val) if run.y_val is not None else 0} validation images held out "
                f"of the training part, at most {cfg.epochs} epochs or "
                f"{(cfg.time_limit or 0) / 60:g} min")
    else:
        stop = f"{settings['epochs']} epochs"
    where = (f"; from epoch {state.epoch + 1}" + (f" batch {state.batch + 1}" if state.batch
                                                  else "")) if resumed else ""
    threads = f"{cfg.threads} thread{'s' if cfg.threads != 1 else ''}"
    return (f"{'resuming' if resumed else 'training'} {settings['arch']} on {data.name}: "
            f"{len(data.y_train)} train / {len(data.y_test)} test images {h}x{w}x{c}, "
            f"{data.n_classes} classes{why}; {stop}; batch {settings['batch_size']}, "
            f"{settings['optimizer']} lr {settings['lr']:g} ({settings['schedule']}), "
            f"augment: {js.describe_augment(settings['augment'])}, seed {settings['seed']}, "
            f"{threads}"
            + "".join(f" ({note})" for note in notes) + f"{_kernels()}{where}")


_SHOWN = {"batch_size": "batch"}


def _kernels() -> str:
    """``", oneDNN kernels"`` when the layers run on oneDNN, ``", NumPy kernels: <why>"`` when
    oneDNN was wanted and failed (:func:`cnnstep.backends.summary`), else nothing."""
    from cnnstep.backends import summary

    said = summary()
    return f", {said}" if said else ""


def run_job(given: dict, *, out: str | None = None, resume: bool = False,
            overwrite: bool = False, plots: bool = True, say: Say = print) -> JobResult:
    """Train as ``cnnstep train`` does, and write the model, metrics and plots.

    Parameters
    ----------
    given : dict
        Settings (keys of :data:`~cnnstep.train.job.settings.DEFAULTS`); None or missing: the
        default, or the checkpoint's on resume.
    out : str, optional
        The output folder; default ``runs/<arch>-<data>`` (numbered when taken).
    resume : bool
        Continue the run saved in the folder's checkpoint.
    overwrite : bool
        Replace the run in the folder.
    plots : bool
        Write the PNG plots.
    say : callable
        Called with each line to show: the first line, one per epoch, the last two.

    Raises
    ------
    UserError
        Anything the user can fix (one line).
    JobInterrupted
        Ctrl-C, after the checkpoint was saved.
    """
    started = time.perf_counter()
    loaded = None
    if out is None:  # the folder's name says the architecture, chosen from the data
        named = js.merge(given, None)
        loaded = (named, load_job_data(named))
    default = default_out(given, loaded[1]) if loaded else Path("runs")
    lock = claim_folder(out, default, resume=resume, overwrite=overwrite)
    try:
        folder = lock.folder
        remove_stale(folder)
        run, settings, data, notes = _prepare(folder, given, resume, loaded)
        say(first_line(run, settings, data, resume, notes))
        for record in run.state.history if resume else []:
            say(format_epoch(record, run.config.epochs))
        meta = _metadata(settings, data)  # a pass over the training images: once
        state = _train(run, settings, data, meta, folder, say)
        return _finish(run, state, settings, data, meta, folder, plots, started, say)
    finally:
        lock.release()


def _metadata(settings: dict, data: Dataset) -> dict:
    image_means = data.x_train.reshape(len(data.x_train), -1).mean(axis=1)
    return {"data": settings["data"], "test_data": settings["test_data"],
            "image_size": settings["image_size"], "test_fraction": settings["test_fraction"],
            "arch": settings["arch"],
            # for predict's warning about images unlike the training data
            "pixel_mean": float(image_means.mean()),
            "pixel_mean_std": float(image_means.std())}


def _train(run: Prepared, settings: dict, data: Dataset, meta: dict, folder: Path,
           say: Say) -> Any:
    ckpt = folder / CHECKPOINT
    saver = checkpoint_saver(ckpt, run.model, run.optimizer, run.config, len(run.y),
                             settings=settings, metadata=meta)
    hooks = [StopOnCtrlC(), ProgressBar(), EpochLog(say), *run.standard_callbacks(),
             Checkpoint(saver)]
    try:
        return train(run.model, run.optimizer, run.x, run.y, run.x_val, run.y_val, run.config,
                     state=run.state, callbacks=hooks)
    except TrainingInterruptedError as exc:
        st = exc.state
        where = (f"in epoch {st.epoch + 1} after batch {st.batch}" if st.batch
                 else f"after epoch {st.epoch}")
        raise JobInterrupted(f"interrupted {where}; checkpoint saved to {ckpt}; continue "
                             f"with: cnnstep train --out {folder} --resume") from None
    except NonFiniteLossError as exc:
        last = (f"the last good checkpoint (after epoch {run.state.epoch}) is kept in {ckpt}"
                if ckpt.is_file() and run.state.epoch else "no checkpoint was written")
        # a tenth of an absurd rate is still absurd: far above the usual, suggest the usual
        usual = recipe_for(DataShape(*data.input_shape, len(data.y_train),
                                     data.n_classes)).lr
        suggest = (f"{usual:g} (the default for this data)" if exc.lr > 10 * usual
                   else f"{exc.suggested_lr:g}")
        raise UserError(f"{exc.what}. Lower the learning rate: --lr {suggest} "
                        f"(it is {exc.lr:g}); {last}") from None


def majority(y_test: np.ndarray, names: list[str]) -> tuple[str | None, float | None]:
    """The most common class of the test part and the accuracy of always answering it."""
    if not len(y_test):
        return None, None
    counts = np.bincount(y_test, minlength=len(names))
    k = int(counts.argmax())
    return names[k] if k < len(names) else str(k), float(counts[k] / len(y_test))


def _finish(run: Prepared, state: Any, settings: dict, data: Dataset, meta: dict,
            folder: Path, plots: bool, started: float, say: Say) -> JobResult:
    from cnnstep.nn.model import save_model

    model, history = run.model, state.history
    save_model(model, folder / MODEL, metadata=meta)
    test, y_pred = (model.evaluate(data.x_test, data.y_test, return_predictions=True)
                    if len(data.y_test) else (None, data.y_test))
    test_acc = test["accuracy"] if test else None
    name, base = majority(data.y_test, data.class_names)
    kept = state.extra.get("early_stopping")
    metrics = {
        "data": data.name, "arch": settings["arch"], "test_accuracy": test_acc,
        "test_loss": test["loss"] if test else None,
        "majority_class": name, "majority_accuracy": base,
        "seconds_per_epoch": statistics.median(h["seconds"] for h in history),
        "stopped": state.stopped, "best_epoch": kept["best"]["epoch"] if kept else None,
        "epochs": history, "settings": settings, "class_names": data.class_names,
    }
    atomic_write(folder / METRICS, lambda f: f.write(json.dumps(metrics, indent=2).encode()))
    n_plots = _plots(folder, model, history, data, y_pred) if plots else 0
    best = metrics["best_epoch"]
    if state.stopped and kept:
        ended = (f"stopped after epoch {state.epoch} ({state.stopped}), kept the weights of "
                 f"epoch {best}")
    else:
        ended = (f"{state.epoch} epochs" + (f" ({state.stopped})" if state.stopped else "")
                 + (f", kept the weights of epoch {best}" if kept and best != state.epoch
                    else ""))
    acc = f"test accuracy {test_acc:.2%}" if test_acc is not None else "no test set"
    say(f"done: {acc}; {ended}; {metrics['seconds_per_epoch']:.2f} s/epoch (median), "
        f"{time.perf_counter() - started:.0f} s in all; model, metrics"
        f"{f', {n_plots} plots' if n_plots else ''} in {folder}/")
    if test_acc is not None and base is not None:
        say(baseline_line(test_acc, name, base))
    return JobResult(folder, test_acc, name, base, metrics)


def baseline_line(accuracy: float, name: str | None, base: float) -> str:
    """The test accuracy against always answering the most common test class; a warning
    when it is not above."""
    if accuracy > base:
        return (f"test accuracy {accuracy:.2%} is above the {base:.2%} of always answering "
                f"{name!r} (the most common class of the test part)")
    return (f"warning: test accuracy {accuracy:.2%} is not above the {base:.2%} of always "
            f"answering {name!r} (the most common class of the test part): the model has not "
            "learnt to tell the classes apart")


def _plots(folder: Path, model: Any, history: list[dict], data: Dataset,
           y_pred: np.ndarray) -> int:
    from cnnstep.train.plots import write_all

    # matplotlib reads $...$ in labels as math: a class name like "$\\sqrt{$" must not fail
    # the run after the model is saved
    shown = [name.replace("$", r"\$") for name in data.class_names]
    try:
        return len(write_all(folder, model, history, data.x_test, data.y_test, y_pred, shown))
    except (ValueError, RuntimeError) as exc:
        warnings.warn(f"plots not written ({' '.join(str(exc).split())[:200]})", stacklevel=1)
        return 0

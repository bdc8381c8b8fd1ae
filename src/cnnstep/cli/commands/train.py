"""``cnnstep train``: train a CNN on a built-in or user data set, with plots and resume."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from cnnstep.cli.options import (
    add_data_arguments,
    check_shapes,
    count,
    load_dataset,
    non_negative_int,
    positive_float,
    positive_int,
)
from cnnstep.data.builtin import BUILTINS
from cnnstep.errors import UserError
from cnnstep.nn.architectures import ARCHITECTURES
from cnnstep.nn.optimizers import OPTIMIZERS
from cnnstep.nn.schedules import SCHEDULES

CHECKPOINT = "checkpoint.npz"
MODEL = "model.npz"
METRICS = "metrics.json"

# Defaults of a fresh run. Settings that shape the run are kept in the checkpoint; on --resume
# only --epochs and --lr may differ from it.
DEFAULTS = {
    "data": "mnist5k",
    "test_data": None,
    "image_size": None,
    "test_fraction": 0.2,
    "arch": "default",
    "epochs": 10,
    "batch_size": 64,
    "lr": 5e-3,
    "optimizer": "adam",
    "schedule": "cosine",
    "augment": None,  # None: about 1/14 of the image size (2 pixels for 28x28)
    "seed": 0,
    "threads": None,  # None: the number of CPUs, at most 4
}
CHANGEABLE_ON_RESUME = ("epochs", "lr", "threads")


# Place in `cnnstep --help`.
ORDER = 20

# ---------------------------------------------------------------------- train


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a CNN and save the model, metrics and plots",
        description="Train a CNN. Writes DIR/model.npz, DIR/metrics.json and PNG plots; "
                    "Ctrl-C saves DIR/checkpoint.npz, and --resume continues from it.",
    )
    add_data_arguments(p, "default mnist5k")
    p.add_argument("--arch", choices=tuple(ARCHITECTURES), help="architecture (default: default)")
    p.add_argument("--epochs", type=positive_int, help=f"epochs (default {DEFAULTS['epochs']})")
    p.add_argument("--batch-size", type=positive_int, metavar="B",
                   help=f"mini-batch size (default {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=positive_float, metavar="X",
                   help=f"learning rate (default {DEFAULTS['lr']:g})")
    p.add_argument("--optimizer", choices=tuple(OPTIMIZERS),
                   help="optimizer with its default settings (default adam; sgd: momentum 0.9)")
    p.add_argument("--schedule", choices=tuple(SCHEDULES),
                   help="learning-rate schedule (default cosine decay to 0)")
    p.add_argument("--augment", type=non_negative_int, metavar="PIXELS",
                   help="random shifts of training images by up to PIXELS (default: 1/14 of the "
                        "image size, 2 for 28x28; 0 turns it off)")
    p.add_argument("--seed", type=non_negative_int, help="random seed (default 0)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default runs/<arch>-<data name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in DIR/checkpoint.npz up to --epochs")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out DIR (default: refuse)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="split each batch into N parts run side by side, one in this process "
                        "and the others in worker processes (threads for runs under 10 steps "
                        "or where processes cannot start; the same numbers either way; "
                        "default: the number of CPUs, at most 4); NumPy's own BLAS threading "
                        "is turned off meanwhile, as it gains little on these small products "
                        "and stalls on a busy CPU")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(handler=run)


def _settings(args: argparse.Namespace, stored: dict | None) -> dict:
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    if "image_size" in given:
        given["image_size"] = list(given["image_size"])
    if stored is None:
        return {**DEFAULTS, **given}
    for key, value in given.items():
        if key not in CHANGEABLE_ON_RESUME and value != stored.get(key):
            option = "--" + key.replace("_", "-")
            raise UserError(
                f"{option} {value} differs from the checkpoint's {stored.get(key)}; drop "
                f"{option} to resume, or start a new run with another --out"
            )
    return {**stored, **{k: given[k] for k in CHANGEABLE_ON_RESUME if k in given}}


def _default_out(args: argparse.Namespace) -> Path:
    data = str(args.data or DEFAULTS["data"])
    name = Path(data).stem if data not in BUILTINS else data
    return Path("runs") / f"{args.arch or DEFAULTS['arch']}-{name or 'data'}"


def _holds_run(folder: Path) -> str | None:
    """The name of the first run file in ``folder`` (model, checkpoint, metrics), else None."""
    for name in (MODEL, CHECKPOINT, METRICS):
        if (folder / name).exists():
            return name
    return None


def _choose_out(args: argparse.Namespace) -> Path:
    """The output folder: never one holding an earlier run unless --resume or --overwrite.

    The default folder gets a numbered name (``runs/default-mnist5k-2``, ...) when taken; with
    --resume it is the newest numbered folder that holds a checkpoint.
    """
    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite contradict each other; give one")
    if args.out:
        out = Path(args.out)
        found = _holds_run(out) if out.is_dir() else None
        if found and not (args.resume or args.overwrite):
            raise UserError(
                f"--out {out} already holds a run ({found}); continue it with --resume, "
                "replace it with --overwrite, or choose another --out"
            )
        return out
    base = _default_out(args)
    taken = [base] + [base.with_name(f"{base.name}-{k}") for k in range(2, 10_000)]
    if args.resume:
        with_ckpt = [p for p in taken[:1000] if (p / CHECKPOINT).is_file()]
        return with_ckpt[-1] if with_ckpt else base
    if args.overwrite:
        return base
    for candidate in taken:
        if not (candidate.is_dir() and _holds_run(candidate)):
            return candidate
    raise UserError(f"{base}: 10000 earlier runs; pass --out")  # pragma: no cover


def _prepare_out(out: Path) -> None:
    """Create ``out``, prove it writable before training, and remove stale temporary files of
    a save that was killed (``.model.npz.*.tmp``)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    for name in (MODEL, CHECKPOINT, METRICS):
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def _say(line: str) -> None:
    """Print a progress line; a closed stdout (``| head``) must not stop training."""
    try:
        print(line, flush=True)
    except (BrokenPipeError, ValueError):
        _silence_stdout()


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - no file descriptor to replace
        pass
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def _make_optimizer(settings: dict) -> Any:
    return OPTIMIZERS[settings["optimizer"]](lr=settings["lr"])


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except OSError as exc:  # a full disk, a read-only folder: the user's to fix
        where = exc.filename or args.out or "the output folder"
        raise UserError(f"{where}: cannot write ({exc.strerror or exc})") from exc


def _run(args: argparse.Namespace) -> int:
    from cnnstep.backends import summary as kernels_summary
    from cnnstep.nn.model import save_model
    from cnnstep.train.callbacks import (
        Checkpoint,
        EpochLog,
        NonFiniteLossError,
        ProgressBar,
        StopOnCtrlC,
        format_epoch,
    )
    from cnnstep.train.checkpoint import load_checkpoint, save_checkpoint
    from cnnstep.train.loop import TrainingInterruptedError, train
    from cnnstep.train.parallel import default_threads
    from cnnstep.train.state import TrainConfig, TrainState

    started = time.perf_counter()
    out = _choose_out(args)
    ckpt_path = out / CHECKPOINT
    _prepare_out(out)  # fail before training, not after

    resumed = None
    if args.resume:
        if not ckpt_path.is_file():
            raise UserError(f"--resume: no checkpoint {ckpt_path} (train without --resume first)")
        model, optimizer, saved, arrays, _ = load_checkpoint(ckpt_path)
        try:
            stored = saved["settings"]
            if not isinstance(stored, dict) or set(DEFAULTS) - set(stored):
                raise ValueError("its settings are incomplete")
            settings = _settings(args, stored)
            state = TrainState.from_json(saved["progress"], arrays.get("perm"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{ckpt_path}: damaged checkpoint ({exc})") from None
        if settings["epochs"] <= state.epoch:
            raise UserError(
                f"--epochs {settings['epochs']}: the checkpoint has already done "
                f"{count(state.epoch, 'epoch')}; give --epochs more than {state.epoch} to "
                "continue"
            )
        resumed = state
    else:
        settings = _settings(args, None)

    data = load_dataset(settings["data"], settings["test_data"], settings["image_size"],
                        settings["test_fraction"])
    if resumed is None:
        from cnnstep.nn.architectures import build_architecture

        try:
            model = build_architecture(settings["arch"], data.input_shape, data.n_classes,
                                       seed=settings["seed"], class_names=data.class_names)
        except ValueError as exc:
            raise UserError(f"--arch {settings['arch']} does not fit {data.name}: {exc}") from exc
        optimizer = _make_optimizer(settings)
        state = TrainState()
    else:
        check_shapes(model, data, f"the checkpoint {ckpt_path}")
        optimizer.lr = settings["lr"]
    if settings["augment"] is None:
        settings["augment"] = max(data.input_shape[:2]) // 14
    most = max(1, min(data.input_shape[:2]) // 4)
    if settings["augment"] > most:
        raise UserError(
            f"--augment {settings['augment']}: shifts of more than a quarter of the "
            f"{data.input_shape[0]}x{data.input_shape[1]} images move them out of the frame; "
            f"use at most {most}"
        )
    if settings.get("threads") is None:
        settings["threads"] = default_threads()
    config = TrainConfig(epochs=settings["epochs"], batch_size=settings["batch_size"],
                         schedule=settings["schedule"], augment_shift=settings["augment"],
                         lr=settings["lr"], threads=settings["threads"])
    image_means = data.x_train.reshape(len(data.x_train), -1).mean(axis=1)
    metadata = {"data": settings["data"], "test_data": settings["test_data"],
                "image_size": settings["image_size"], "test_fraction": settings["test_fraction"],
                "arch": settings["arch"],
                # for predict's warning about images unlike the training data
                "pixel_mean": float(image_means.mean()),
                "pixel_mean_std": float(image_means.std())}

    h, w, c = data.input_shape
    _say(f"{'resuming' if resumed else 'training'} {settings['arch']} on {data.name}: "
          f"{len(data.y_train)} train / {len(data.y_test)} test images {h}x{w}x{c}, "
          f"{data.n_classes} classes; {count(settings['epochs'], 'epoch')}, "
          f"batch {settings['batch_size']}, "
          f"{settings['optimizer']} lr {settings['lr']:g} ({settings['schedule']}), "
          f"shift {settings['augment']}, seed {settings['seed']}, "
          f"{count(settings['threads'], 'thread')}"
          + (f", {kernels_summary()}" if kernels_summary() else "")
          + (f"; from epoch {state.epoch + 1}" + (f" batch {state.batch + 1}" if state.batch
                                                  else "") if resumed else ""))
    if resumed:
        for record in state.history:
            _say(format_epoch(record, settings["epochs"]))

    def save(st: TrainState) -> None:
        arrays = {"perm": st.perm} if st.batch and st.perm is not None else {}
        save_checkpoint(ckpt_path, model, optimizer,
                        {"progress": st.to_json(), "settings": settings}, arrays, metadata)

    try:
        state = train(model, optimizer, data.x_train, data.y_train, data.x_test, data.y_test,
                      config, state=state,
                      callbacks=[StopOnCtrlC(), ProgressBar(), EpochLog(_say),
                                 Checkpoint(save)])
    except TrainingInterruptedError as exc:
        st = exc.state
        where = (f"in epoch {st.epoch + 1} after batch {st.batch}" if st.batch
                 else f"after epoch {st.epoch}")
        print(f"cnnstep: interrupted {where}; checkpoint saved to {ckpt_path}; continue "
              f"with: cnnstep train --out {out} --resume", file=sys.stderr)
        return 130
    except NonFiniteLossError as exc:
        last = (f"the last good checkpoint (after epoch {state.epoch}) is kept in {ckpt_path}"
                if ckpt_path.is_file() and state.epoch else "no checkpoint was written")
        # a tenth of an absurd rate is still absurd: far above the default, suggest the default
        default_lr = float(DEFAULTS["lr"])  # type: ignore[arg-type]
        far = exc.lr > 10 * default_lr
        suggest = f"{default_lr:g} (the default)" if far else f"{exc.suggested_lr:g}"
        raise UserError(f"{exc.what}. Lower the learning rate: --lr {suggest} "
                        f"(it is {exc.lr:g}); {last}") from None

    # final outputs
    save_model(model, out / MODEL, metadata=metadata)
    y_pred = model.predict(data.x_test) if len(data.y_test) else data.y_test
    history = state.history
    seconds = statistics.median(h["seconds"] for h in history)
    test_acc = history[-1]["test_accuracy"]
    metrics = {
        "data": data.name,
        "arch": settings["arch"],
        "test_accuracy": test_acc,
        "seconds_per_epoch": seconds,
        "epochs": history,
        "settings": settings,
        "class_names": data.class_names,
    }
    from cnnstep.fileio import atomic_write

    atomic_write(out / METRICS, lambda f: f.write(json.dumps(metrics, indent=2).encode()))
    n_plots = 0
    if not args.no_plots:
        from cnnstep.train.plots import write_all

        # matplotlib reads $...$ in labels as math: a class name like "$\\sqrt{$" must not
        # fail the run after the model is saved
        shown = [name.replace("$", r"\$") for name in data.class_names]
        try:
            n_plots = len(write_all(out, model, history, data.x_test, data.y_test, y_pred,
                                    shown))
        except (ValueError, RuntimeError) as exc:
            import warnings

            warnings.warn(f"plots not written ({' '.join(str(exc).split())[:200]})",
                          stacklevel=1)
    acc = f"test accuracy {test_acc:.2%}" if test_acc is not None else "no test set"
    plots = f", {n_plots} plots" if n_plots else ""
    _say(f"done: {acc} after {count(state.epoch, 'epoch')}, {seconds:.2f} s/epoch (median), "
         f"{time.perf_counter() - started:.0f} s in all; model, metrics{plots} in {out}/")
    return 0

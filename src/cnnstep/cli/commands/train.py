"""``cnnstep train``: train a CNN on a built-in or user data set, with plots and resume.

Argument parsing and printing only: the job itself (settings and their defaults, the choices
made from the data, resume, the output folder and its lock) is
:func:`cnnstep.train.job.run.run_job`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from cnnstep.cli.options import (
    add_data_arguments,
    non_negative_int,
    number_option,
    positive_float,
    positive_int,
)
from cnnstep.errors import UserError
from cnnstep.nn.architectures import ARCHITECTURES
from cnnstep.nn.optimizers import OPTIMIZERS
from cnnstep.nn.schedules import SCHEDULES

# Place in `cnnstep --help`.
ORDER = 20

#: The options that are settings of the job (``--batch-size`` -> ``batch_size``).
SETTINGS = ("data", "test_data", "image_size", "test_fraction", "arch", "epochs", "batch_size",
            "lr", "optimizer", "schedule", "augment", "seed", "threads", "patience",
            "time_limit")


def _epochs(text: str) -> Any:
    if text == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a positive integer, got {text!r}")\
            from None


def _augment(text: str) -> str:
    from cnnstep.train.job.settings import parse_augment

    try:
        parse_augment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("augment: ")) from None
    return text


_minutes = number_option(float, lambda v: 0 < v < 1e6, "a positive number of minutes")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a CNN and save the model, metrics and plots",
        description="Train a CNN. Writes DIR/model.npz, DIR/metrics.json and PNG plots; "
                    "Ctrl-C saves DIR/checkpoint.npz, and --resume continues from it. Options "
                    "left out are chosen from the data; the first line says what was chosen.",
    )
    add_data_arguments(p, "default mnist5k")
    p.add_argument("--arch", choices=tuple(ARCHITECTURES),
                   help="architecture (default: chosen from the image size)")
    p.add_argument("--epochs", type=_epochs, metavar="auto|N",
                   help="auto (default): train until the accuracy on a part held out of the "
                        "training data stops improving, keep the best epoch's weights, within "
                        "the bounds the first line prints; N: exactly N epochs (cosine decay), "
                        "validating on the test part")
    p.add_argument("--batch-size", type=positive_int, metavar="B",
                   help="mini-batch size (default: chosen from the image size)")
    p.add_argument("--lr", type=positive_float, metavar="X",
                   help="learning rate (default: chosen from the image size)")
    p.add_argument("--optimizer", choices=tuple(OPTIMIZERS),
                   help="optimizer with its default settings (default adam; sgd: momentum 0.9)")
    p.add_argument("--schedule", choices=tuple(SCHEDULES),
                   help="learning-rate schedule (default: constant, halved on plateaus, with "
                        "--epochs auto; cosine decay to 0 with --epochs N)")
    p.add_argument("--augment", type=_augment, metavar="SPEC",
                   help="random changes to the training images (never to the validation or "
                        "test images): N (shifts by up to N pixels), flip (left-right "
                        "mirroring of half of them), shift=N,flip (both), or none (default: "
                        "chosen from the data, and said on the first line)")
    p.add_argument("--patience", type=positive_int, metavar="N",
                   help="stop after N epochs without a better validation accuracy (default 12 "
                        "with --epochs auto; with --epochs N it holds out a validation part too)")
    p.add_argument("--time-limit", type=_minutes, metavar="MIN",
                   help="stop after the epoch that passes MIN minutes of training (default 12 "
                        "with --epochs auto)")
    p.add_argument("--seed", type=non_negative_int, help="random seed (default 0)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default runs/<arch>-<data name>, numbered when taken)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved in DIR/checkpoint.npz")
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


def settings_given(args: argparse.Namespace) -> dict:
    """The job's settings the options give (None: not given)."""
    given = {key: getattr(args, key, None) for key in SETTINGS}
    if given["time_limit"] is not None:
        given["time_limit"] = given["time_limit"] * 60.0  # minutes on the command line
    return given


def _say(line: str) -> None:
    """Print a progress line; a closed stdout (``| head``) must not stop training."""
    try:
        print(line, flush=True)
    except (BrokenPipeError, ValueError):
        _silence_stdout()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - no file descriptor to replace
        pass
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def run(args: argparse.Namespace) -> int:
    from cnnstep.train.job.run import JobInterrupted, run_job

    try:
        run_job(settings_given(args), out=args.out, resume=args.resume,
                overwrite=args.overwrite, plots=not args.no_plots, say=_say)
    except JobInterrupted as exc:
        print(f"cnnstep: {exc.message}", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk, a read-only folder: the user's to fix
        where = exc.filename or args.out or "the output folder"
        raise UserError(f"{where}: cannot write ({exc.strerror or exc})") from exc
    return 0

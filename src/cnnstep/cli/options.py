"""Argument types, options and wordings that several ``cnnstep`` commands share.

Choices come from the registries (built-in data sets, architectures, optimizers, schedules), so
adding one of those never touches the CLI. The conventions every command follows (a test checks
them on every parser):

- every option has a help text, and :class:`HelpFormatter` ends it with the default, unless the
  default is None or False (nothing to show) or the help already names it;
- a value's metavar says what it is, in capitals: ``N`` (a count), ``X`` (a number), ``SIZE``
  (bytes, ``8G``), ``FILE`` or ``DIR`` (a path), ``NAME`` (one of a list given in the help),
  ``H W`` and ``H W C`` (image sizes);
- an argument error names the flag as the user typed it: the argparse ``type`` functions below
  raise :class:`argparse.ArgumentTypeError` with "expected ..., got ...";
- a file that is not there is ``PATH: no such file`` (:func:`missing_file`), in every command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

from cnnstep.data.builtin import BUILTINS
from cnnstep.data.dataset import Dataset, check_fraction
from cnnstep.errors import UserError

# The one wording of a path that is not there (the library's readers say the same).
MISSING_FILE = "{path}: no such file"
MISSING_PATH = "{path}: no such file or folder"


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, each option's text ending with ``(default: ...)`` where there is one.

    Left alone: positionals, flags and options whose default is None or False, help texts that
    already say ``default``, and ``--help``/``--version``.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default is None or default is False
                or default == argparse.SUPPRESS or "default" in text):
            return action.help
        shown = (" ".join(map(str, default)) if isinstance(default, (list, tuple))
                 else str(default))
        return f"{text} (default: {shown.replace('%', '%%')})".lstrip()


def missing_file(path: object, folder: bool = False) -> UserError:
    """The error for a path that is not there: ``PATH: no such file`` (``... or folder``)."""
    return UserError((MISSING_PATH if folder else MISSING_FILE).format(path=path))


def existing_file(path: str, folder: bool = False) -> str:
    """``path`` itself, if a file (or, with ``folder``, a folder) is there; else
    :func:`missing_file`'s error. For commands that check a path before their work starts."""
    if not (os.path.isfile(path) or (folder and os.path.isdir(path))):
        if os.path.exists(path):
            kind = "a file" if not folder else "a file or folder"
            raise UserError(f"{path}: not {kind}")
        raise missing_file(path, folder)
    return path


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM unwinds like Ctrl-C (KeyboardInterrupt), so that every
    ``finally`` runs: the checker's kills its sandboxed children there."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def count(n: int, noun: str) -> str:
    """``"1 epoch"``, ``"2 epochs"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def number_option(convert: Callable[[str], Any], valid: Callable[[Any], bool],
                  expected: str) -> Callable[[str], Any]:
    """An argparse ``type`` that converts with ``convert`` and accepts what ``valid`` allows."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected
    return parse


positive_int = number_option(int, lambda v: v >= 1, "a positive integer")
non_negative_int = number_option(int, lambda v: v >= 0, "an integer >= 0")
positive_float = number_option(float, lambda v: 0 < v < float("inf"), "a positive number")


def pad_value(text: str) -> int | str:
    """An argparse ``type`` for a padding: an integer >= 0, ``same`` or ``valid``."""
    if text in ("same", "valid"):
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 0, 'same' or 'valid', got {text!r}")
    return value


def fraction(text: str) -> float:
    """An argparse ``type`` for a fraction in (0, 1), checked by
    :func:`cnnstep.data.dataset.check_fraction`."""
    try:
        return check_fraction(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """The positional ``MODEL``: a model file written by ``cnnstep train``."""
    parser.add_argument("model", metavar="MODEL", help="a model.npz written by cnnstep train")


def add_data_arguments(parser: argparse.ArgumentParser, default_help: str) -> None:
    """``--data``, ``--test-data``, ``--image-size``, ``--test-fraction`` (defaults: None)."""
    parser.add_argument("--data", metavar="NAME|PATH",
                        help=f"built-in data set ({', '.join(BUILTINS)}) or a path; "
                             f"{default_help}")
    parser.add_argument("--test-data", metavar="PATH",
                        help="separate test set for a data path (otherwise the data are split)")
    parser.add_argument("--image-size", type=positive_int, nargs=2, metavar=("H", "W"),
                        help="resize images read from a path to H x W pixels")
    parser.add_argument("--test-fraction", type=fraction, metavar="F",
                        help="fraction held out for testing when data are split (default 0.2)")


def load_dataset(data: str, test_data: str | None, image_size: Any,
                 test_fraction: float | None, *, allow_test_only: bool = False) -> Dataset:
    """The data set the data options name (see :func:`cnnstep.data.builtin.load_data`;
    ``allow_test_only``: a file holding only a test part is read, with an empty training
    part)."""
    from cnnstep.data.builtin import load_data

    if data in BUILTINS:  # say it in the options' names, before the library does in its own
        for given, option in ((test_data, "--test-data"), (image_size, "--image-size")):
            if given is not None:
                raise UserError(f"{option} cannot be used with the built-in data set {data} "
                                "(it has its own test part and image size)")
    return load_data(
        data,
        test_data=test_data,
        image_size=tuple(image_size) if image_size else None,
        test_fraction=test_fraction if test_fraction is not None else 0.2,
        allow_test_only=allow_test_only,
    )


def check_shapes(model: Any, data: Dataset, model_label: str) -> None:
    """The data must fit the model's input shape and number of classes (the training job's
    check, :func:`cnnstep.train.job.run.check_fits`)."""
    from cnnstep.train.job.run import check_fits

    check_fits(model, data, model_label)

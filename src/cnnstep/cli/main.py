"""The ``cnnstep`` command line.

Each sub-command is one module of :mod:`cnnstep.cli.commands`, found there by name: it defines
``ORDER`` (its place in ``cnnstep --help``) and ``register(subparsers)``, which adds its parser and
sets ``handler`` to a function ``(args) -> int``; a command that reads no file sets
``READS_FILES = False`` and gets no ``--max-memory``. Adding a command is adding one module.
Every parser shows each option's default (:class:`~cnnstep.cli.options.HelpFormatter`). Any
:class:`~cnnstep.errors.UserError` (and argument errors) become one line on stderr and exit
code 2; Ctrl-C becomes exit code 130.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from cnnstep import __version__
from cnnstep.budget import parse_size
from cnnstep.cli.options import HelpFormatter
from cnnstep.cli.text import for_terminal
from cnnstep.config import config_context
from cnnstep.errors import UserError


def command_modules() -> list[Any]:
    """The modules of :mod:`cnnstep.cli.commands`, in the order ``cnnstep --help`` lists them."""
    from cnnstep.cli import commands

    found = [importlib.import_module(f"{commands.__name__}.{info.name}")
             for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_")]
    return sorted(found, key=lambda module: (getattr(module, "ORDER", 100), module.__name__))


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) with exit code 2, and the help
    shows each option's default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The ``cnnstep`` parser with every command of :mod:`cnnstep.cli.commands`."""
    parser = _OneLineParser(
        prog="cnnstep",
        description="Convolutional networks in NumPy, step by step and fast.",
    )
    parser.add_argument("--version", action="version", version=f"cnnstep {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    sub.required = True
    for module in command_modules():
        before = set(sub.choices)
        module.register(sub)
        if not getattr(module, "READS_FILES", True):
            continue
        for name in set(sub.choices) - before:  # one budget option for what files declare
            sub.choices[name].add_argument(
                "--max-memory", metavar="SIZE", default=None,
                help="largest array a file may declare, e.g. 8G (default: 4G or half the "
                     "memory; also CNNSTEP_MAX_MEMORY)")
    return parser


def _show_warning(message: Any, category: Any, filename: Any, lineno: Any, file: Any = None,
                  line: Any = None) -> None:
    """Warnings for the user (skipped files, odd data) as one line, without source locations."""
    print(f"cnnstep: warning: {for_terminal(str(message))}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        budget = getattr(args, "max_memory", None)
        # for this command only: main() called from Python leaves the caller's setting as it was
        settings = {} if budget is None else {"memory_budget": parse_size(budget, "--max-memory")}
        with warnings.catch_warnings(), config_context(**settings):
            warnings.showwarning = _show_warning
            return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"cnnstep: error: {for_terminal(str(exc))}", file=sys.stderr)
        return 2
    except MemoryError:
        print("cnnstep: error: out of memory; use smaller data, a smaller --batch-size or "
              "--image-size, or a machine with more memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnstep: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `cnnstep ... | head`
        return 0

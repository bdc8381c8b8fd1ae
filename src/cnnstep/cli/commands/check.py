"""``cnnstep check FILE``: which of a learner's eight functions is wrong, and why."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from cnnstep.cli.options import sigterm_as_interrupt

# Place in `cnnstep --help`.
ORDER = 50

MAX_TIMEOUT = 600.0


def seconds(text: str) -> float:
    """An argparse ``type``: seconds in (0, 600]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds in (0, {MAX_TIMEOUT:g}], got {text!r}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check your own zero_pad ... pool_backward against cnnstep's reference",
        description=(
            "Check the eight step-by-step functions (zero_pad, conv_single_step, conv_forward, "
            "conv_backward, pool_forward, create_mask_from_window, distribute_value, "
            "pool_backward) defined in FILE, a .py file or a Jupyter notebook. Only imports, "
            "definitions and simple assignments are run, in a sandboxed process with time and "
            "memory limits; top-level calls, magics and shell lines are skipped. "
            "Exit code: 0 when all eight pass, 1 when any does not, 2 when FILE cannot be read."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="a .py file or a .ipynb notebook")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of a table")
    parser.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="CPU seconds per function, all its cases together (default 10, "
                             "at most 600); as long again waiting without computing; wall-clock "
                             "time only as a backstop, so a busy machine changes no verdict")
    parser.add_argument("--isolation", choices=("auto", "bubblewrap", "process"), default="auto",
                        help="bubblewrap: a bwrap sandbox (exit 2 when bwrap does not work "
                             "here); process: process limits only; auto (default): bubblewrap "
                             "when it works, else process with a warning")
    add_lang_argument(parser)
    parser.set_defaults(handler=run)


def add_lang_argument(parser: argparse.ArgumentParser) -> None:
    """``--lang en|es``: the language of the messages (not of JSON keys or status words)."""
    from cnnstep.checker.i18n import LANGUAGES

    parser.add_argument("--lang", choices=LANGUAGES, default=None,
                        help="language of the report, problems and hints: en or es (default: "
                             "from the locale, LANG=es_* gives es); JSON keys and status words "
                             "stay English")


def run(args: argparse.Namespace) -> int:
    from cnnstep.checker import FALLBACK_WARNING, check_file, format_table, to_json
    from cnnstep.checker.i18n import gettext, language

    with language(args.lang), sigterm_as_interrupt():
        outcome = check_file(args.file, timeout=args.timeout, isolation=args.isolation)
        if gettext(FALLBACK_WARNING) in outcome.warnings:
            print(f"cnnstep: warning: {gettext(FALLBACK_WARNING)}", file=sys.stderr)
        data = to_json(outcome)
        if args.json:
            print(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            print(format_table(outcome))
    return 0 if data["passed"] == data["total"] else 1

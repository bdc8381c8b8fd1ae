"""``cnnstep check FILE``: which of a learner's eight functions is wrong, and why."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

# Place in `cnnstep --help`.
ORDER = 50

def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check your own zero_pad ... pool_backward against cnnstep's reference",
        description=(
            "Check the eight step-by-step functions (zero_pad, conv_single_step, conv_forward, "
            "conv_backward, pool_forward, create_mask_from_window, distribute_value, "
            "pool_backward) defined in FILE, a .py file or a Jupyter notebook. Only imports, "
            "definitions and simple assignments are run (in a separate process, with time and "
            "memory limits); top-level calls, magics and shell lines are skipped. "
            "Exit code: 0 when all eight pass, 1 when any does not, 2 when FILE cannot be read."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="a .py file or a .ipynb notebook")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object instead of a table")
    parser.add_argument("--timeout", type=_seconds, default=10.0, metavar="SECONDS",
                        help="time limit per function, all its cases together (default 10)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cnnstep.checker import check_file, format_table, to_json

    outcome = check_file(args.file, timeout=args.timeout)
    data = to_json(outcome)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_table(outcome))
    return 0 if data["passed"] == data["total"] else 1

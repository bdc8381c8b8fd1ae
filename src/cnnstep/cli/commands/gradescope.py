"""``cnnstep gradescope-autograder --out autograder.zip``: Gradescope's autograder for the eight
functions (``setup.sh`` installs cnnstep and bubblewrap; ``run_autograder`` grades the
submission folder and always writes results.json)."""

from __future__ import annotations

import argparse
from typing import Any

from cnnstep.cli.commands.check import add_lang_argument, seconds

# Place in `cnnstep --help`: after grade.
ORDER = 56


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gradescope-autograder",
        help="write Gradescope's autograder.zip (setup.sh, run_autograder)",
        description="Write the zip file to upload as a Gradescope programming assignment's "
                    "autograder: setup.sh installs cnnstep (this version, or --wheel) and "
                    "bubblewrap; run_autograder grades /autograder/submission with "
                    "'cnnstep grade --format gradescope' and always leaves a results.json.",
    )
    parser.add_argument("--out", default="autograder.zip", metavar="ZIP",
                        help="the file to write (default autograder.zip)")
    parser.add_argument("--points", metavar="FILE",
                        help="JSON or TOML: function name -> points (default 1 each)")
    parser.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="CPU-time limit per function (default 10)")
    parser.add_argument("--wheel", metavar="FILE",
                        help="a cnnstep wheel to put in the zip and install from")
    add_lang_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnstep.checker.i18n import gettext, language
    from cnnstep.errors import UserError
    from cnnstep.grading.grade import load_points
    from cnnstep.grading.gradescope import autograder_zip

    with language(args.lang) as lang:
        wheel = Path(args.wheel) if args.wheel else None
        if wheel is not None and not (wheel.is_file() and wheel.suffix == ".whl"):
            raise UserError(gettext("--wheel {path}: not a wheel file").format(path=wheel))
        names = autograder_zip(Path(args.out), load_points(args.points), args.timeout, lang,
                               wheel)
        print(gettext("wrote {path} ({names}): upload it as the assignment's autograder").format(
            path=args.out, names=", ".join(names)))
    return 0

"""``cnnstep grade PATH... --out DIR``: a whole class through the checker's sandbox."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from cnnstep.cli.commands.check import add_lang_argument, seconds
from cnnstep.cli.options import positive_int, sigterm_as_interrupt

# Place in `cnnstep --help`: after check.
ORDER = 55


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "grade",
        help="grade many submissions: gradebook, feedback files, Gradescope results",
        description="Check every submission (.py or .ipynb; files, folders searched "
                    "recursively, or glob patterns) in the same sandbox as 'cnnstep check' and "
                    "write DIR/gradebook.csv, DIR/gradebook.json and DIR/feedback/<name>.md. "
                    "Submissions already graded into DIR with the same content and settings "
                    "are not run again (--force runs them again). Exit 0 when every "
                    "submission has a row, 2 on a usage error.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument("--out", required=True, metavar="DIR", help="where the gradebook goes")
    parser.add_argument("--points", metavar="FILE",
                        help="JSON or TOML: function name -> points (default 1 each)")
    parser.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="time limit per function, as for check (default 10)")
    parser.add_argument("--isolation", choices=("auto", "bubblewrap", "process"), default="auto",
                        help="as for check (default auto)")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="submissions checked at once (default: the number of CPUs)")
    parser.add_argument("--format", choices=("gradebook", "gradescope"), default="gradebook",
                        help="gradescope: also write DIR/results.json (one submission)")
    parser.add_argument("--force", action="store_true", help="grade everything again")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on a Dask distributed cluster (one task per submission; "
                             "needs the dask extra and the files at the same paths on workers)")
    add_lang_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from cnnstep.checker import FALLBACK_WARNING
    from cnnstep.checker.i18n import gettext, language, ngettext
    from cnnstep.grading.grade import grade, load_points

    points = load_points(args.points)
    with language(args.lang) as lang, sigterm_as_interrupt():
        records = grade(args.paths, args.out, points=points, timeout=args.timeout,
                        isolation=args.isolation, jobs=args.jobs or os.cpu_count() or 1,
                        force=args.force, gradescope=args.format == "gradescope",
                        progress=True, scheduler=args.scheduler, lang=lang)
        warning = gettext(FALLBACK_WARNING)
        if any(warning in r.get("warnings", []) for r in records):
            print(f"cnnstep: warning: {warning}", file=sys.stderr)
        unreadable = sum(r["status"] == "unreadable" for r in records)
        total = sum(r["score"] for r in records)
        print(ngettext("graded {n} submission ({unreadable} unreadable); mean score {mean} of "
                       "{max_score}; gradebook in {out}/",
                       "graded {n} submissions ({unreadable} unreadable); mean score {mean} of "
                       "{max_score}; gradebook in {out}/", len(records)).format(
            n=len(records), unreadable=unreadable, mean=f"{total / len(records):.2f}",
            max_score=f"{sum(points.values()):g}", out=args.out))
    return 0

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
        help="grade many submissions: gradebook, feedback files, class report, Gradescope",
        description="Check every submission (.py or .ipynb; files, folders searched "
                    "recursively, or glob patterns) in the same sandbox as 'cnnstep check' and "
                    "write DIR/gradebook.csv, DIR/gradebook.json, DIR/feedback/<name>.md and the "
                    "class report DIR/report.html and DIR/report.md. Each submission is recorded "
                    "in DIR/gradebook.jsonl as soon as it is graded: Ctrl-C stops at once and "
                    "keeps what was graded, and a later run grades only the rest (--force "
                    "grades everything again). 'cnnstep grade --report DIR' rebuilds the class "
                    "report from the gradebook alone. Exit 0 when every submission has a row, "
                    "2 on a usage error, 130 when interrupted.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="a submission (.py or .ipynb), a folder searched recursively, or a "
                             "glob pattern (quoted); with --format gradescope, the one "
                             "submission folder")
    parser.add_argument("--out", metavar="DIR", help="where the gradebook goes")
    parser.add_argument("--report", metavar="DIR",
                        help="only rebuild DIR/report.html and DIR/report.md from DIR's "
                             "gradebook")
    parser.add_argument("--points", metavar="FILE",
                        help="JSON or TOML: function name -> points (default 1 each)")
    parser.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="CPU-time limit per function, as for check (default 10)")
    parser.add_argument("--isolation", choices=("auto", "bubblewrap", "process"), default="auto",
                        help="as for check (default auto)")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="submissions checked at once (default: the number of CPUs)")
    parser.add_argument("--format", choices=("gradebook", "gradescope"), default="gradebook",
                        help="gradescope: PATH is one submission folder as Gradescope gives it; "
                             "also write DIR/results.json")
    parser.add_argument("--force", action="store_true", help="grade everything again")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run on a Dask distributed cluster (one task per submission; "
                             "needs the dask extra and the files at the same paths on workers)")
    add_lang_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnstep.checker import FALLBACK_WARNING
    from cnnstep.checker.i18n import gettext, language, ngettext
    from cnnstep.errors import UserError
    from cnnstep.grading.classreport import write_class_report
    from cnnstep.grading.grade import grade, load_points

    with language(args.lang) as lang, sigterm_as_interrupt():
        if args.report:
            html, _md = write_class_report(Path(args.report), lang)
            print(gettext("class report in {path}").format(path=html))
            return 0
        if not args.paths or not args.out:
            raise UserError(gettext("grade: give the submissions (PATH...) and --out DIR, or "
                                    "--report DIR"))
        if args.format == "gradescope" and len(args.paths) != 1:
            raise UserError(gettext("--format gradescope grades one submission folder per run, "
                                    "got {n}").format(n=len(args.paths)))
        points = load_points(args.points)
        records = grade(args.paths, args.out, points=points, timeout=args.timeout,
                        isolation=args.isolation, jobs=args.jobs or os.cpu_count() or 1,
                        force=args.force, gradescope=args.format == "gradescope",
                        progress=True, scheduler=args.scheduler, lang=lang)
        warning = gettext(FALLBACK_WARNING)
        if any(warning in r.get("warnings", []) for r in records):
            print(f"cnnstep: warning: {warning}", file=sys.stderr)
        n = len(records)
        unreadable = sum(r["status"] != "graded" for r in records)
        reused = sum(bool(r.get("reused")) for r in records)
        mean = sum(r["score"] for r in records) / n if n else 0.0
        parts = [ngettext("{n} submission", "{n} submissions", n).format(n=n),
                 ngettext("{n} reused from an earlier run", "{n} reused from an earlier run",
                          reused).format(n=reused),
                 ngettext("{n} unreadable", "{n} unreadable", unreadable).format(n=unreadable)]
        print(gettext("graded {counts}; mean score {mean} of {max_score}; gradebook in "
                      "{out}/").format(counts=", ".join(parts), mean=f"{mean:.2f}",
                                       max_score=f"{sum(points.values()):g}", out=args.out))
    return 0

"""Seconds per file of ``cnnstep check``, under bubblewrap and under process isolation.

The files: the correct loop implementation, the learner notebook and its .py twin, and every
classic slip of ``tests/checker/check_slips.py`` (except the endless loop, which takes its time
limit by design). Each file is checked ``--repeat`` times per isolation level, alternating.

Usage::

    PYTHONPATH=src python bench/check.py [--repeat 3]

Target (issue 10): median under 2 s per file with bubblewrap.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cnnstep.checker import check_file
from cnnstep.checker.sandbox.isolation import bubblewrap_mode

TESTS = Path(__file__).resolve().parents[1] / "tests" / "checker"


def files(folder: Path) -> list[Path]:
    sys.path.insert(0, str(TESTS))
    from check_slips import SLIPS, write_broken

    fixtures = TESTS / "check_fixtures"
    out = [fixtures / "correct.py", fixtures / "learner_notebook.ipynb",
           fixtures / "learner_notebook_equivalent.py"]
    return out + [write_broken(slip, folder) for slip in sorted(SLIPS) if slip != "infinite_loop"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    levels = ["process"] + (["bubblewrap"] if bubblewrap_mode() else [])
    with tempfile.TemporaryDirectory() as folder:
        paths = files(Path(folder))
        times: dict[str, dict[str, list[float]]] = {p.name: {lv: [] for lv in levels}
                                                    for p in paths}
        for _ in range(args.repeat):
            for path in paths:
                for level in levels:
                    start = time.perf_counter()
                    check_file(path, isolation=level)
                    times[path.name][level].append(time.perf_counter() - start)
    print(f"| file | {' | '.join(f'{lv} (s, median of {args.repeat})' for lv in levels)} |")
    print("|---" * (len(levels) + 1) + "|")
    for name, row in times.items():
        print(f"| {name} | " + " | ".join(f"{statistics.median(row[lv]):.2f}" for lv in levels)
              + " |")
    for level in levels:
        medians = [statistics.median(row[level]) for row in times.values()]
        print(f"median per file, {level}: {statistics.median(medians):.2f} s "
              f"(max {max(medians):.2f} s)")


if __name__ == "__main__":
    main()

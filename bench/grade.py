"""Submissions per second of ``cnnstep grade``: locally with --jobs and on a 2-worker Dask
LocalCluster, on variations of the test fixtures (the correct file and each classic slip).

    PYTHONPATH=src python bench/grade.py --n 200
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "checker"))

from check_slips import CORRECT, SLIPS, broken_source  # noqa: E402

from cnnstep.grading.grade import grade  # noqa: E402


def make_class(folder: Path, n: int) -> None:
    sources = [CORRECT.read_text()] + [broken_source(s) for s in SLIPS]
    for k in range(n):  # a comment makes every file distinct, so none is graded from cache
        (folder / f"student{k:03d}.py").write_text(sources[k % len(sources)] + f"\n# {k}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    try:
        (work / "class").mkdir()
        make_class(work / "class", args.n)
        rows = []
        start = time.perf_counter()
        grade([str(work / "class")], work / "local", jobs=args.jobs)
        rows.append((f"local, --jobs {args.jobs}", time.perf_counter() - start))
        try:
            from distributed import LocalCluster
        except ImportError:
            print("distributed is not installed: the cluster row is skipped")
        else:
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster:
                start = time.perf_counter()
                grade([str(work / "class")], work / "dask", scheduler=cluster.scheduler_address)
                rows.append(("Dask LocalCluster, 2 workers", time.perf_counter() - start))
        print(f"| where | {args.n} submissions (s) | submissions/s |\n|---|---:|---:|")
        for name, seconds in rows:
            print(f"| {name} | {seconds:.1f} | {args.n / seconds:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

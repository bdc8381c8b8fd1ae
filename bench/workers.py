"""What repeated ``fit`` calls cost with worker processes started anew each time, against workers
kept between them (``with cnnstep.train.pool.WorkerPool(): ...``).

A grid search (scikit-learn's ``GridSearchCV``) fits one model many times in a row. Each
``fit(threads=2)`` of 10 steps or more splits its batches with a worker process, which since
"no process outlives the call" starts and stops with each fit. This runs ``--fits`` consecutive
``fit(threads=2, epochs=1)`` calls of the default model on made-up 28x28x1 images, both ways
in turn (``--rounds`` times, alternating which goes first), and prints per way the median wall
time of the whole series, the CPU time of this process and of its children (a worker's start
is a Python with NumPy and cnnstep: CPU the fits' own threads must share), and the children
left alive after the series.

Run: ``PYTHONPATH=src python bench/workers.py [--fits 5] [--rounds 3] [--images 1024]
[--quick]``. ``--quick``: 2 fits of 256 images, 1 round (a smoke test: that it runs).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import numpy as np

from cnnstep.nn.architectures import build_architecture
from cnnstep.train.pool import WorkerPool


def _children_alive() -> int:
    pid = os.getpid()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:  # not Linux
        return -1
    n = 0
    for task in tasks:
        with open(f"/proc/{pid}/task/{task}/children") as f:
            n += len(f.read().split())
    return n


def series(x: np.ndarray, y: np.ndarray, fits: int, keep: bool) -> tuple[float, float, float,
                                                                          int]:
    """``fits`` consecutive fits: (wall s, own CPU s, children's CPU s, children alive after)."""
    model = build_architecture("default", x.shape[1:], 10, seed=0)
    wall0, own0 = time.perf_counter(), time.process_time()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pool = WorkerPool() if keep else None
    try:
        if pool is not None:
            pool.__enter__()
        for _ in range(fits):
            model.fit(x, y, epochs=1, batch_size=64, threads=2)
    finally:
        if pool is not None:
            pool.__exit__(None, None, None)
    wall, own = time.perf_counter() - wall0, time.process_time() - own0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    kids_cpu = (kids.ru_utime + kids.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    return wall, own, kids_cpu, _children_alive()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=5, help="consecutive fits (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="series per way (default 3)")
    parser.add_argument("--images", type=int, default=1024, help="training images (1024)")
    parser.add_argument("--quick", action="store_true", help="2 fits, 256 images, 1 round")
    args = parser.parse_args(argv)
    fits, rounds, m = (2, 1, 256) if args.quick else (args.fits, args.rounds, args.images)
    rng = np.random.default_rng(0)
    x = rng.random((m, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, m)
    print(f"{fits} consecutive fit(threads=2, epochs=1) of the default model, {m} images "
          f"({-(-m // 64)} steps each); load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} cores")
    results: dict[bool, list[tuple[float, float, float, int]]] = {False: [], True: []}
    for r in range(rounds):
        for keep in ((False, True) if r % 2 == 0 else (True, False)):
            results[keep].append(series(x, y, fits, keep))
    print(f"{'workers':34s} {'wall s':>8s} {'CPU s (this)':>13s} {'CPU s (workers)':>16s} "
          f"{'alive after':>12s}")
    for keep, label in ((False, "started with each fit (default)"),
                        (True, "kept between fits (WorkerPool)")):
        rows = results[keep]
        med = [statistics.median(r[i] for r in rows) for i in range(3)]
        print(f"{label:34s} {med[0]:8.2f} {med[1]:13.2f} {med[2]:16.2f} "
              f"{max(r[3] for r in rows):12d}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

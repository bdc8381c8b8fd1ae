"""Paired timing: cnnstep and PyTorch called in turn, so that a busy machine slows both alike.

Taking each side's best time in its own block of runs lets other work on the machine decide the
ratio (the same shape measured three times in a row gave 0.27, 0.87 and 1.97). Here every timed
call of one side is next to a timed call of the other, in alternating order (A B, B A, A B, ...),
and the ratio of each pair is kept: the median of those ratios, with their 10th-90th percentile
spread, is what the benchmarks report. Load that comes and goes within a pair hits both sides.

Shared by ``bench/ops.py`` and ``bench/train.py`` (run from the repository root; the scripts put
this folder first on ``sys.path`` themselves, as Python does for a script).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# Idle worker threads: both libraries are told to let their idle threads sleep rather than spin
# (OPENBLAS_THREAD_TIMEOUT for NumPy's OpenBLAS, OMP_WAIT_POLICY for PyTorch's OpenMP pool). On
# a machine shared with other work, spinning threads fight the other processes for the cores.
# These must be set before NumPy and PyTorch are first imported; settings already in the
# environment are left alone.
IDLE_SETTINGS = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"}


def quiet_idle_threads() -> None:
    """Set :data:`IDLE_SETTINGS` unless ``--spin`` was asked for (call before importing NumPy)."""
    if "--spin" not in sys.argv[1:]:
        for key, value in IDLE_SETTINGS.items():
            os.environ.setdefault(key, value)


@dataclass(frozen=True)
class Paired:
    """Times of paired calls (seconds) and the summary of their ratios ours / theirs."""

    ours: tuple[float, ...]
    theirs: tuple[float, ...]

    @property
    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.ours, self.theirs)]

    @property
    def ratio(self) -> float:
        """Median of the paired ratios."""
        return statistics.median(self.ratios)

    def spread(self) -> tuple[float, float]:
        """10th and 90th percentiles of the paired ratios."""
        return percentile(self.ratios, 10), percentile(self.ratios, 90)

    def ms(self) -> tuple[float, float]:
        """Median milliseconds of each side."""
        return 1e3 * statistics.median(self.ours), 1e3 * statistics.median(self.theirs)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile ``q`` (0-100) of ``values``."""
    v = sorted(values)
    if not v:
        return math.nan
    pos = (len(v) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def paired_times(
    ours: Callable[[], object], theirs: Callable[[], object], pairs: int, warmup: int = 1
) -> Paired:
    """Time ``pairs`` pairs of calls, alternating which side goes first, after ``warmup`` calls
    of each (first-call allocations, thread pools, caches)."""
    for _ in range(warmup):
        ours()
        theirs()
    a, b = [], []
    for k in range(pairs):
        first, second = (ours, theirs) if k % 2 == 0 else (theirs, ours)
        t0 = time.perf_counter()
        first()
        t1 = time.perf_counter()
        second()
        t2 = time.perf_counter()
        ta, tb = (t1 - t0, t2 - t1) if k % 2 == 0 else (t2 - t1, t1 - t0)
        a.append(ta)
        b.append(tb)
    return Paired(tuple(a), tuple(b))


def geomean(values: Sequence[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages and the core count."""
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def blas_name() -> str:
    """NumPy's BLAS and the kernel it picked for this CPU, as threadpoolctl reports them."""
    from threadpoolctl import threadpool_info

    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return f"{pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture')})"
    return "unknown BLAS"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def header(title: str) -> None:
    """What was measured where: libraries, BLAS kernel, idle-thread settings, load."""
    import numpy as np
    import torch

    env = ", ".join(f"{k}={os.environ[k]}" for k in (*IDLE_SETTINGS, "OPENBLAS_CORETYPE",
                                                     "OPENBLAS_L2_SIZE") if k in os.environ)
    print(title)
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"numpy {np.__version__} [{blas_name()}], torch {torch.__version__}; "
          f"environment: {env or 'library defaults'}")
    print(f"load average at start: {load_average()}")
    print(f"oneDNN kernels for the layers (the onednn extra): {onednn_state()}")


def onednn_state() -> str:
    """``"on: oneDNN 3.2.0 (libgomp.so.1)"``, or off and why (``cnnstep.backends``)."""
    from cnnstep.backends import onednn

    return ("on: " if onednn.enabled() else "off (the backend setting is 'numpy'): "
            if onednn.available() else "off: ") + onednn.describe()


@contextlib.contextmanager
def threads(n: int, blas: int | None = None) -> Iterator[None]:
    """PyTorch on ``n`` threads, cnnstep's ops on ``n`` threads (``set_num_threads``, its
    counterpart) and NumPy's BLAS on ``blas`` threads (default ``n``)."""
    import torch
    from threadpoolctl import threadpool_limits

    from cnnstep.ops import get_num_threads, set_num_threads

    old, old_ops = torch.get_num_threads(), get_num_threads()
    torch.set_num_threads(n)
    set_num_threads(n)
    try:
        with threadpool_limits(limits=n if blas is None else blas, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(old)
        set_num_threads(old_ops)


def row(label: str, p: Paired, width: int = 44) -> str:
    """One table line: label, median ms of each side, median ratio and its 10-90% spread."""
    ours, theirs = p.ms()
    lo, hi = p.spread()
    return (f"{label:<{width}} {ours:10.2f} {theirs:10.2f} {p.ratio:7.2f} "
            f"{lo:6.2f}-{hi:<6.2f}")


def table_head(first: str, width: int = 44) -> str:
    return (f"{first:<{width}} {'cnnstep ms':>10} {'torch ms':>10} {'ratio':>7} "
            f"{'10-90%':>13}")


def add_common_options(parser: Any, quick_help: str) -> None:
    """The options both benchmarks take: ``--threads``, ``--quick``, ``--spin``, ``--json``."""
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts to compare at, both libraries (default: 1 2)")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--spin", action="store_true",
                        help="keep the libraries' default idle-thread spinning")
    parser.add_argument("--json", metavar="PATH",
                        help="also write what was measured, where and when, as JSON "
                             "(bench/record.py; docs/perf/ holds what the site shows)")


def repeats(parser: Any, args: Any, flag: str, quick: int, least: int) -> int:
    """The count of ``--flag`` (``quick`` with ``--quick``), at least ``least``; the thread
    counts are checked too."""
    n = quick if args.quick else getattr(args, flag)
    if n < least:
        parser.error(f"--{flag} must be at least {least}")
    if any(t < 1 for t in args.threads):
        parser.error("--threads must be positive")
    return int(n)

"""Benchmark cnnstep's convolution and pooling against PyTorch's CPU path, call by call.

For every shape this times one forward plus one backward pass of cnnstep (NHWC, float32) and of
PyTorch (``conv2d`` / ``max_pool2d`` / ``avg_pool2d`` on the same data, NCHW contiguous, padded
the same way), the two called in turn (A B, B A, A B, ...; see ``bench/paired.py``), at 1 and at
2 threads (``torch.set_num_threads`` and its counterpart ``cnnstep.ops.set_num_threads``, NumPy's
BLAS through threadpoolctl). Each row gives the
median of the paired ratios cnnstep / PyTorch and their 10th-90th percentile spread; the load
average is printed before and after. A ratio below 1 means cnnstep is faster.

Then (not with ``--quick``): the workspace that conv forward+backward on 256x64x64x16 -> 32 takes
beyond its inputs and outputs (``tracemalloc``), and the speed-up of the fast path over the loops
of :mod:`cnnstep.reference` on the published cases.

``--layers`` times the same shapes through the layers (``Conv2D``, ``MaxPool2D``, ``AvgPool2D``:
a training forward pass and its backward pass), which is what training runs: with the ``onednn``
extra, convolutions run on oneDNN's kernels there. ``--case`` replaces the suite with shapes of
your own, written as the table writes them (``"conv 64x14x14x16->32 f3 s1 psame"``,
``"max pool 64x28x28x16 f2 s2"``, ``"average pool 32x32x32x32 f3 s1 p1"``); ``--held-out``
with the shapes ``bench/cases.py`` keeps out of the suite (never used to tune the kernels).
``--dtype float64`` times both libraries in float64.

Run: ``PYTHONPATH=src python bench/ops.py [--threads 1 2] [--pairs 21] [--layers]
[--case SHAPE ...] [--held-out] [--dtype float64] [--quick] [--spin] [--json PATH]``;
``--json`` also writes what was measured, where and when (``bench/record.py``):
``--json docs/perf/ops.json`` (``ops-layers.json`` with ``--layers``) is what the
documentation's performance page shows.
``--quick`` runs tiny shapes with a few pairs (the CI smoke test: it checks that the benchmark
runs, not how fast). ``--spin`` keeps the libraries' default idle-thread spinning (see
``bench/paired.py``). PyTorch and threadpoolctl are needed here only (test/bench dependencies).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import paired  # noqa: E402  (bench/paired.py, beside this file)
import record  # noqa: E402  (bench/record.py)

if __name__ == "__main__":
    paired.quiet_idle_threads()  # before NumPy and PyTorch start their thread pools

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

import cnnstep  # noqa: E402
from cases import (  # noqa: E402  (bench/cases.py: NumPy and cnnstep, imported after the setting)
    HELD_OUT,
    QUICK,
    SUITE,
    Case,
    cnnstep_step,
    layer_step,
    make_data,
    parse_case,
    torch_step,
)
from cnnstep import reference  # noqa: E402
from cnnstep.ops.published import PUBLISHED_CASES  # noqa: E402


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls after one warm-up call, in milliseconds (used only for
    the speed-up over the loops, where both sides are cnnstep's)."""
    fn()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def workspace_mib(m: int = 256) -> tuple[float, float]:
    """Peak bytes traced during conv forward+backward beyond inputs and outputs, in MiB.

    Shape ``m x 64 x 64 x 16 -> 32``, 3x3, pad 1, float32. Returns (workspace, budget) in MiB.
    """
    rng = np.random.default_rng(1)
    A = rng.standard_normal((m, 64, 64, 16), dtype=np.float32)
    W = rng.standard_normal((3, 3, 16, 32), dtype=np.float32)
    b = rng.standard_normal((1, 1, 1, 32), dtype=np.float32)
    dZ = rng.standard_normal((m, 64, 64, 32), dtype=np.float32)
    hp = {"stride": 1, "pad": 1}
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        Z, cache = cnnstep.conv_forward(A, W, b, hp)
        dA, dW, db = cnnstep.conv_backward(dZ, cache)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = Z.nbytes + dA.nbytes + dW.nbytes + db.nbytes
    return (peak - outputs) / 2**20, cnnstep.get_workspace_budget() / 2**20


_CALLS = 20  # calls per timing of a published case: they take microseconds each


def reference_speedups(repeat: int, table: record.Table | None = None) -> None:
    """Fast path vs the loops of cnnstep.reference on each published case (float64)."""
    print(f"\n{'loops ms':>9} {'fast ms':>9} {'speed-up':>9}  published case (float64)")
    speedups = []
    for case in PUBLISHED_CASES:
        args = case.inputs(cnnstep)
        fast = getattr(cnnstep, case.function)
        slow = getattr(reference, case.function)
        t_fast = best_ms(lambda f=fast, a=args: [f(*a) for _ in range(_CALLS)], repeat) / _CALLS
        t_slow = best_ms(lambda f=slow, a=args: [f(*a) for _ in range(_CALLS)], repeat) / _CALLS
        speedups.append(t_slow / t_fast)
        print(f"{t_slow:9.4f} {t_fast:9.4f} {t_slow / t_fast:8.1f}x  {case.function}: {case.label}")
        if table is not None:
            table.add(f"{case.function}: {case.label}", t_slow, t_fast, t_slow / t_fast)
    geo = math.exp(sum(map(math.log, speedups)) / len(speedups))
    print(f"geometric-mean speed-up of the fast path over the loops: {geo:.1f}x")
    if table is not None:
        table.notes.append(f"Geometric-mean speed-up of the fast path over the loops: "
                           f"{geo:.1f}x.")


def run_table(cases, pairs: int, rng, layers: bool = False,
              dtype: str = "float32") -> list[tuple[Case, paired.Paired]]:
    """Print one line per case as it is measured; return the paired times."""
    print(paired.table_head(f"shape (NHWC, fwd+bwd, {dtype})") + f" {'GFLOP/s':>8}")
    rows = []
    ours = layer_step if layers else cnnstep_step
    for case in cases:
        d = make_data(case, rng, np.dtype(dtype))
        p = paired.paired_times(ours(case, d), torch_step(case, d), pairs)
        gflops = case.flops() / (p.ms()[0] * 1e-3) / 1e9
        print(paired.row(case.label, p) + f" {gflops:8.1f}", flush=True)
        rows.append((case, p))
    return rows


def summarize(rows: list[tuple[Case, paired.Paired]]) -> str:
    """Print (and return) the geometric mean of the ratios and the worst one."""
    ratios = [p.ratio for _, p in rows]
    few = [p.ratio for c, p in rows if c.kind == "conv" and c.C <= 4]
    worst = max(rows, key=lambda r: r[1].ratio)
    text = (f"geometric mean of the median ratios: {paired.geomean(ratios):.2f}; worst "
            f"{worst[1].ratio:.2f} ({worst[0].label})"
            + (f"; convolutions with <= 4 input channels: worst {max(few):.2f}" if few else ""))
    print(text)
    return text


def add_table(report: record.Report, title: str, rows: list[tuple[Case, paired.Paired]],
              summary: str, dtype: str = "float32") -> None:
    """The rows of one thread count in the JSON report."""
    table = report.table(title, [*record.paired_columns(f"shape (NHWC, {dtype})"),
                                 {"title": "GFLOP/s", "format": ".1f"}])
    for case, p in rows:
        table.add(case.label, *record.paired_values(p),
                  case.flops() / (p.ms()[0] * 1e-3) / 1e9)
    table.notes.append(summary[0].upper() + summary[1:] + ".")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=21,
                        help="timed pairs per shape, at least 3 (default 21)")
    parser.add_argument("--layers", action="store_true",
                        help="through the layers (what training runs; oneDNN's kernels for "
                             "convolutions with the onednn extra) instead of the functional ops")
    parser.add_argument("--case", type=parse_case, nargs="+", metavar="SHAPE",
                        help="shapes of your own instead of the suite, written as the table "
                             "writes them, e.g. 'conv 64x14x14x16->32 f3 s1 psame'")
    parser.add_argument("--held-out", action="store_true",
                        help="the shapes kept out of the suite (bench/cases.py) instead of it")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="the arrays' dtype, both libraries (default float32)")
    paired.add_common_options(
        parser, "tiny shapes, 3 pairs, no memory and reference sections (CI smoke)")
    args = parser.parse_args(argv)
    pairs = paired.repeats(parser, args, "pairs", quick=3, least=3)

    what = "layers (training forward + backward)" if args.layers else "ops, forward + backward"
    paired.header(f"cnnstep {what} / PyTorch ops, median of paired ratios")
    from cnnstep import backends

    # the name is the file the performance page reads: docs/perf/<name>.json
    name = ("ops-layers" if args.layers else "ops") + ("-held-out" if args.held_out else "") \
        + (f"-{args.dtype}" if args.dtype != "float32" else "")
    report = record.Report(name,
                           f"cnnstep {what} against PyTorch, {pairs} paired calls per shape"
                           + (", shapes kept out of the suite" if args.held_out else "")
                           + (f", {args.dtype}" if args.dtype != "float32" else ""))
    report.set("onednn", backends.status())
    cases = args.case or (QUICK if args.quick else HELD_OUT if args.held_out else SUITE)
    for n in args.threads:
        with paired.threads(n):
            title = f"{n} thread{'s' if n > 1 else ''} (NumPy BLAS and PyTorch)"
            print(f"\n{title}:")
            rows = run_table(cases, pairs, np.random.default_rng(0), args.layers, args.dtype)
            add_table(report, title, rows, summarize(rows), args.dtype)
            print(f"load average: {paired.load_average()}")
    if not (args.quick or args.case or args.layers or args.held_out or args.dtype != "float32"):
        ws, budget = workspace_mib()
        print(f"\nworkspace of conv fwd+bwd 256x64x64x16->32 f3 p1 float32 (tracemalloc, beyond "
              f"inputs and outputs): {ws:.1f} MiB (budget setting {budget:.0f} MiB)")
        report.set("workspace_mib", {"conv 256x64x64x16->32 f3 p1": round(ws, 2),
                                     "budget": round(budget, 2)})
        table = report.table("The fast path against the loops of cnnstep.reference "
                             "(published cases, float64)",
                             [{"title": "published case"}, {"title": "loops ms", "format": ".4f"},
                              {"title": "fast ms", "format": ".4f"},
                              {"title": "speed-up", "format": ".1f", "bold": True}])
        reference_speedups(5, table)
    if args.json:
        report.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

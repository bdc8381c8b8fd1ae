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
``"max pool 64x28x28x16 f2 s2"``, ``"average pool 32x32x32x32 f3 s1 p1"``).

Run: ``PYTHONPATH=src python bench/ops.py [--threads 1 2] [--pairs 21] [--layers]
[--case SHAPE ...] [--quick] [--spin] [--json PATH]``; ``--json`` also writes what was measured,
where and when (``bench/record.py``): ``--json docs/perf/ops.json`` (``ops-layers.json`` with
``--layers``) is what the documentation's performance page shows.
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
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

import cnnstep  # noqa: E402
from cnnstep import reference  # noqa: E402
from cnnstep.ops.geometry import resolve_pad  # noqa: E402
from cnnstep.ops.published import PUBLISHED_CASES  # noqa: E402


@dataclass(frozen=True)
class Case:
    """One benchmark shape: NHWC ``m x H x W x C``, then ``F`` filters (conv) or a pool mode."""

    kind: str  # "conv", "max", "average"
    m: int
    H: int
    W: int
    C: int
    f: int
    stride: int
    pad: int | str = 0
    F: int = 0

    @property
    def label(self) -> str:
        shape = f"{self.m}x{self.H}x{self.W}x{self.C}"
        pad = f" p{self.pad}" if self.pad else ""
        if self.kind == "conv":
            return f"conv {shape}->{self.F} f{self.f} s{self.stride}{pad}"
        return f"{self.kind} pool {shape} f{self.f} s{self.stride}{pad}"

    def pads(self) -> tuple[tuple[int, int], tuple[int, int]]:
        return resolve_pad(self.pad, (self.H, self.W), (self.f, self.f),
                           (self.stride, self.stride), "pad", "bench")

    def out_hw(self) -> tuple[int, int]:
        (t, bt), (lt, r) = self.pads()
        return ((self.H + t + bt - self.f) // self.stride + 1,
                (self.W + lt + r - self.f) // self.stride + 1)

    def flops(self) -> float:
        """Floating-point operations of forward + backward.

        Convolution: 2 per multiply-add, three products of equal size (Z, dW, dA_prev).
        Pooling: one compare or add per window tap, forward and backward.
        """
        n_H, n_W = self.out_hw()
        out = self.m * n_H * n_W
        if self.kind == "conv":
            return 3 * 2.0 * out * self.f * self.f * self.C * self.F
        return 2.0 * out * self.f * self.f * self.C


# The shapes that count (geometric mean, worst). Convolutions with at most 4 input channels are
# the first layers of image models: the default model on MNIST, the course's SIGNS model on
# 64x64x3, one larger RGB image.
SUITE = (
    Case("conv", 64, 28, 28, 1, 5, 1, 2, F=32),
    Case("conv", 64, 28, 28, 1, 3, 1, "same", F=16),
    Case("conv", 64, 64, 64, 3, 4, 1, "same", F=8),
    Case("conv", 1, 128, 128, 3, 3, 1, 1, F=16),
    Case("conv", 32, 32, 32, 3, 5, 1, 2, F=32),
    Case("conv", 64, 14, 14, 16, 3, 1, "same", F=32),
    Case("conv", 64, 8, 8, 8, 2, 1, "same", F=16),
    Case("conv", 64, 32, 32, 16, 3, 1, 1, F=32),
    Case("conv", 32, 16, 16, 64, 3, 1, 1, F=64),
    Case("conv", 16, 56, 56, 64, 3, 1, 1, F=64),
    Case("conv", 64, 32, 32, 32, 3, 2, 1, F=64),
    Case("conv", 64, 32, 32, 64, 1, 1, 0, F=64),
    Case("conv", 1, 56, 56, 64, 3, 1, 1, F=64),
    Case("conv", 8, 4, 4, 256, 3, 1, 1, F=256),
    Case("conv", 32, 15, 15, 32, 3, 2, 0, F=32),
    Case("max", 64, 28, 28, 16, 2, 2),
    Case("max", 64, 32, 32, 32, 2, 2),
    Case("max", 64, 64, 64, 8, 8, 8),
    Case("max", 64, 28, 28, 16, 3, 2, 1),
    Case("average", 64, 28, 28, 16, 3, 1),
    Case("average", 32, 32, 32, 32, 2, 2),
)

# --quick: the same kinds of shape, tiny (the smoke test checks that the benchmark runs).
QUICK = (
    Case("conv", 2, 8, 8, 1, 3, 1, "same", F=4),
    Case("conv", 2, 8, 8, 3, 4, 1, "same", F=4),
    Case("conv", 2, 8, 8, 8, 3, 2, 1, F=8),
    Case("max", 2, 8, 8, 4, 2, 2),
    Case("average", 2, 8, 8, 4, 3, 1),
)


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


def make_data(case: Case, rng: np.random.Generator) -> dict[str, np.ndarray]:
    f32 = np.float32
    data = {"A": rng.standard_normal((case.m, case.H, case.W, case.C), dtype=f32)}
    n_H, n_W = case.out_hw()
    n_C = case.F if case.kind == "conv" else case.C
    data["dout"] = rng.standard_normal((case.m, n_H, n_W, n_C), dtype=f32)
    if case.kind == "conv":
        data["W"] = rng.standard_normal((case.f, case.f, case.C, case.F), dtype=f32) * f32(0.1)
        data["b"] = rng.standard_normal((1, 1, 1, case.F), dtype=f32)
    return data


def parse_case(text: str) -> Case:
    """A :class:`Case` from its table label, e.g. ``"conv 64x14x14x16->32 f3 s1 psame"``."""
    words = text.replace(" pool ", " ").split()
    try:
        kind, shape, *rest = words
        if kind not in ("conv", "max", "average"):
            raise ValueError(kind)
        dims_, _, filters = shape.partition("->")
        if (kind == "conv") != bool(filters):
            raise argparse.ArgumentTypeError(
                f"--case: a convolution needs '->filters', a pooling none: {text!r}")
        m, H, W, C = (int(v) for v in dims_.split("x"))
        opts = {w[0]: w[1:] for w in rest}
        pad: int | str = opts.get("p", "0")
        pad = int(pad) if str(pad).isdigit() else pad
        case = Case(kind, m, H, W, C, int(opts["f"]), int(opts.get("s", "1")), pad,
                    F=int(filters) if kind == "conv" else 0)
        case.out_hw()  # the padding is one resolve_pad accepts
    except (ValueError, KeyError, TypeError) as exc:
        raise argparse.ArgumentTypeError(
            f"--case: expected e.g. 'conv 64x14x14x16->32 f3 s1 psame' or "
            f"'max pool 64x28x28x16 f2 s2', got {text!r} ({exc})") from None
    return case


def layer_step(case: Case, d: dict[str, np.ndarray]) -> Callable[[], object]:
    """A training forward pass and its backward pass through the layer of ``case``."""
    layer: cnnstep.nn.layers.Layer
    if case.kind == "conv":
        layer = cnnstep.Conv2D(case.F, case.f, stride=case.stride, padding=case.pad)
    else:
        cls = cnnstep.MaxPool2D if case.kind == "max" else cnnstep.AvgPool2D
        layer = cls(case.f, case.stride, padding=case.pad)
    layer.build(d["A"].shape[1:], np.random.default_rng(0), np.float32)
    if case.kind == "conv":
        layer.params["W"][...] = d["W"]
        layer.params["b"][...] = d["b"]

    def step():
        layer.forward(d["A"], training=True)
        return layer.backward(d["dout"])
    return step


def cnnstep_step(case: Case, d: dict[str, np.ndarray]) -> Callable[[], object]:
    if case.kind == "conv":
        hp = {"stride": case.stride, "pad": case.pad}

        def step():
            _, cache = cnnstep.conv_forward(d["A"], d["W"], d["b"], hp)
            return cnnstep.conv_backward(d["dout"], cache)
    else:
        hp = {"f": case.f, "stride": case.stride, "pad": case.pad}

        def step():
            _, cache = cnnstep.pool_forward(d["A"], hp, case.kind)
            return cnnstep.pool_backward(d["dout"], cache, case.kind)
    return step


def torch_step(case: Case, d: dict[str, np.ndarray]) -> Callable[[], object]:
    import torch
    import torch.nn.functional as tf

    x = torch.from_numpy(d["A"].transpose(0, 3, 1, 2).copy()).requires_grad_()
    g = torch.from_numpy(d["dout"].transpose(0, 3, 1, 2).copy())
    (t, bt), (lt, r) = case.pads()
    symmetric = t == bt and lt == r

    def padded(z, value=0.0):
        return z if symmetric else tf.pad(z, (lt, r, t, bt), value=value)

    if case.kind == "conv":
        w = torch.from_numpy(d["W"].transpose(3, 2, 0, 1).copy()).requires_grad_()
        b = torch.from_numpy(d["b"].reshape(-1).copy()).requires_grad_()
        params = (x, w, b)
        pad = (t, lt) if symmetric else 0

        def forward():
            return tf.conv2d(padded(x), w, b, stride=case.stride, padding=pad)
    elif case.kind == "max":
        params = (x,)
        if not symmetric:
            raise ValueError("asymmetric max pooling is not benchmarked")

        def forward():
            return tf.max_pool2d(x, case.f, case.stride, padding=(t, lt))
    else:
        params = (x,)
        if not symmetric:
            raise ValueError("asymmetric average pooling is not benchmarked")

        def forward():
            # count_include_pad=False: divide by real cells, as cnnstep does.
            return tf.avg_pool2d(x, case.f, case.stride, padding=(t, lt),
                                count_include_pad=False)

    def step():
        for p in params:
            p.grad = None
        forward().backward(g)

    return step


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


def run_table(cases, pairs: int, rng, layers: bool = False) -> list[tuple[Case, paired.Paired]]:
    """Print one line per case as it is measured; return the paired times."""
    print(paired.table_head("shape (NHWC, fwd+bwd, float32)") + f" {'GFLOP/s':>8}")
    rows = []
    ours = layer_step if layers else cnnstep_step
    for case in cases:
        d = make_data(case, rng)
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
              summary: str) -> None:
    """The rows of one thread count in the JSON report."""
    table = report.table(title, [*record.paired_columns("shape (NHWC, float32)"),
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
    paired.add_common_options(
        parser, "tiny shapes, 3 pairs, no memory and reference sections (CI smoke)")
    args = parser.parse_args(argv)
    pairs = paired.repeats(parser, args, "pairs", quick=3, least=3)

    what = "layers (training forward + backward)" if args.layers else "ops, forward + backward"
    paired.header(f"cnnstep {what} / PyTorch ops, median of paired ratios")
    from cnnstep import backends

    report = record.Report("ops-layers" if args.layers else "ops",
                           f"cnnstep {what} against PyTorch, {pairs} paired calls per shape")
    report.set("onednn", backends.status())
    cases = args.case or (QUICK if args.quick else SUITE)
    for n in args.threads:
        with paired.threads(n):
            title = f"{n} thread{'s' if n > 1 else ''} (NumPy BLAS and PyTorch)"
            print(f"\n{title}:")
            rows = run_table(cases, pairs, np.random.default_rng(0), args.layers)
            add_table(report, title, rows, summarize(rows))
            print(f"load average: {paired.load_average()}")
    if not (args.quick or args.case or args.layers):
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

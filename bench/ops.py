"""Benchmark cnnstep's convolution and pooling against PyTorch's CPU path, side by side.

For every shape of the suite this times one forward plus one backward pass of cnnstep (NHWC,
float32) and of PyTorch (``conv2d`` / ``max_pool2d`` / ``avg_pool2d`` on the same data, NCHW
contiguous, padded the same way), best of ``--repeat`` runs after a warm-up, both on the same
number of threads. The sgemm peak of the machine is measured in the same run (a large float32
matrix product through NumPy's BLAS), so the GFLOP/s column can be read against the ceiling.

Then: the workspace that conv forward+backward on 256x64x64x16 -> 32 takes beyond its inputs and
outputs (``tracemalloc``), and the speed-up of the fast path over the loops of
:mod:`cnnstep.reference` on the published cases.

Idle worker threads: by default both libraries are told to let their idle threads sleep rather
than spin (``OPENBLAS_THREAD_TIMEOUT=4`` for NumPy's OpenBLAS, ``OMP_WAIT_POLICY=PASSIVE`` for
PyTorch's OpenMP pool). On a machine shared with other work, spinning threads fight the other
processes for the cores and every parallel call can wait a whole scheduler slice: timings then
swing by 10x from run to run, for both libraries. ``--spin`` keeps the libraries' defaults
(best on an otherwise idle machine). Settings already in the environment are left alone.

Run: ``PYTHONPATH=src python bench/ops.py [--threads N] [--repeat R] [--quick] [--spin]``.
PyTorch and threadpoolctl are needed here only (they are test/bench dependencies, not runtime).
"""

from __future__ import annotations

import os
import sys

# Must precede the first import of NumPy and PyTorch: the thread pools read it when they start.
if __name__ == "__main__" and "--spin" not in sys.argv[1:]:
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


SUITE = (
    Case("conv", 64, 28, 28, 1, 5, 1, 2, F=32),
    Case("conv", 64, 32, 32, 16, 3, 1, 1, F=32),
    Case("conv", 32, 16, 16, 64, 3, 1, 1, F=64),
    Case("conv", 64, 64, 64, 3, 4, 1, "same", F=8),
    Case("conv", 16, 56, 56, 64, 3, 1, 1, F=64),
    Case("conv", 64, 32, 32, 32, 3, 2, 1, F=64),
    Case("max", 64, 32, 32, 32, 2, 2),
    Case("average", 64, 28, 28, 16, 3, 1),
    Case("max", 64, 64, 64, 8, 8, 8),
)

# Shapes outside the suite that must not fall off a cliff (reported, not in the geometric mean).
EXTRA = (
    Case("conv", 64, 32, 32, 64, 1, 1, 0, F=64),
    Case("conv", 1, 56, 56, 64, 3, 1, 1, F=64),
    Case("conv", 8, 4, 4, 256, 3, 1, 1, F=256),
    Case("conv", 32, 15, 15, 32, 3, 2, 0, F=32),
    Case("max", 64, 28, 28, 16, 3, 2, 1),
    Case("average", 32, 32, 32, 32, 2, 2),
)


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` calls after one warm-up call, in milliseconds."""
    return best_ms_pair(fn, None, repeat)[0]


def best_ms_pair(
    fn: Callable[[], object], other: Callable[[], object] | None, repeat: int
) -> tuple[float, float]:
    """Best wall times of two functions, in milliseconds, their runs interleaved.

    Interleaving exposes both to the same background load, so the ratio stays fair on a busy
    machine.
    """
    fns = [fn] if other is None else [fn, other]
    best = [math.inf] * len(fns)
    for f in fns:
        f()  # warm-up: first-call allocations, thread pools, caches
    for _ in range(repeat):
        for k, f in enumerate(fns):
            t0 = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best[0] * 1e3, (best[1] * 1e3 if other is not None else math.nan)


def sgemm_peak(repeat: int, n: int = 2048) -> float:
    """GFLOP/s of a large float32 matrix product through NumPy's BLAS (best of ``repeat``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    ms = best_ms(lambda: np.matmul(a, b, out=c), repeat)
    return 2.0 * n**3 / (ms * 1e-3) / 1e9


def load_average() -> str:
    """The 1-minute load average and the core count: other work on the machine skews timings."""
    try:
        return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    except OSError:
        return "unknown"


def blas_name() -> str:
    """NumPy's BLAS and the kernel it picked for this CPU, as threadpoolctl reports them."""
    from threadpoolctl import threadpool_info

    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            return f"{pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture')})"
    return "unknown BLAS"


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


def run_table(cases, repeat: int, rng) -> list[tuple[Case, float, float]]:
    """(case, cnnstep ms, PyTorch ms) for each case."""
    rows = []
    for case in cases:
        d = make_data(case, rng)
        ours, theirs = best_ms_pair(cnnstep_step(case, d), torch_step(case, d), repeat)
        rows.append((case, ours, theirs))
    return rows


def print_table(rows: list[tuple[Case, float, float]], peak: float) -> list[float]:
    """Print the rows; return their ratios cnnstep / PyTorch."""
    print(f"{'shape (NHWC, fwd+bwd, float32)':<38} {'cnnstep ms':>10} {'torch ms':>10} "
          f"{'ratio':>7} {'GFLOP/s':>9} {'% peak':>9}")
    ratios = []
    for case, ours, theirs in rows:
        gflops = case.flops() / (ours * 1e-3) / 1e9
        ratios.append(ours / theirs)
        print(f"{case.label:<38} {ours:10.2f} {theirs:10.2f} {ours / theirs:7.2f} "
              f"{gflops:9.1f} {100 * gflops / peak:8.1f}%")
    return ratios


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


def reference_speedups(repeat: int) -> None:
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
    geo = math.exp(sum(map(math.log, speedups)) / len(speedups))
    print(f"geometric-mean speed-up of the fast path over the loops: {geo:.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="threads for both libraries (default: all cores)")
    parser.add_argument("--repeat", type=int, default=10,
                        help="timed runs per shape, at least 5 (best kept; default 10)")
    parser.add_argument("--quick", action="store_true",
                        help="suite only: skip the extra shapes, memory and reference sections")
    parser.add_argument("--spin", action="store_true",
                        help="keep the libraries' default idle-thread spinning (see the docstring)")
    args = parser.parse_args(argv)
    if args.repeat < 5:
        parser.error("--repeat must be at least 5")

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    waits = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY")
                      if k in os.environ) or "library defaults"
    with threadpool_limits(limits=args.threads):
        print(f"threads: {args.threads} (NumPy BLAS and PyTorch)  numpy {np.__version__} "
              f"[{blas_name()}]  torch {torch.__version__}")
        print(f"idle threads: {waits}; load average at start: {load_average()}")
        load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        peak = sgemm_peak(3 * args.repeat)
        rng = np.random.default_rng(0)
        suite = run_table(SUITE, args.repeat, rng)
        extra = [] if args.quick else run_table(EXTRA, args.repeat, rng)
        # The peak again after the timings, keeping the better: a busy moment must not
        # inflate every percentage.
        peak = max(peak, sgemm_peak(3 * args.repeat))
        print(f"sgemm peak (NumPy, 2048^3 float32, best before/after the table): "
              f"{peak:.1f} GFLOP/s; load average after the timings: {load_average()}\n")
        busy = max(os.getloadavg()[0], load_at_start) if hasattr(os, "getloadavg") else 0.0
        # The load average counts this benchmark's own threads too.
        if busy > args.threads + 0.5 * (os.cpu_count() or 1):
            print(f"warning: the machine was busy with other work (load average up to "
                  f"{busy:.1f}): multi-threaded BLAS calls stall when a core is taken away, "
                  f"so timings, cnnstep's most of all (it makes many BLAS calls), are "
                  f"unreliable; compare with --threads 1 or rerun on an idle machine\n")
        ratios = print_table(suite, peak)
        geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
        print(f"\ngeometric-mean ratio cnnstep/PyTorch over the suite: {geo:.2f} "
              f"(worst {max(ratios):.2f})")
        if args.quick:
            return 0
        print("\nextra shapes (not in the geometric mean):")
        print_table(extra, peak)
        ws, budget = workspace_mib()
        print(f"\nworkspace of conv fwd+bwd 256x64x64x16->32 f3 p1 float32 (tracemalloc, "
              f"beyond inputs and outputs): {ws:.1f} MiB (budget setting {budget:.0f} MiB, "
              f"limit 256 MiB)")
        reference_speedups(args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

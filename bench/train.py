"""Seconds per epoch of cnnstep's models against PyTorch twins, call by call.

Two models, each against a PyTorch twin with the same layers, Adam (lr 1e-3), batch 64, float32,
the same shuffling and the same augmentation; an epoch is its training steps plus scoring the test
images:

* ``default`` (Conv 16 3x3 same, ReLU, MaxPool 2, Conv 32 3x3 same, ReLU, MaxPool 2, Flatten,
  Dense 10) on mnist5k: 4,000 training and 1,000 test images of 28x28x1, shift 2;
* ``signs``, the course's model (Conv 8 4x4 same, ReLU, MaxPool 8, Conv 16 2x2 same, ReLU,
  MaxPool 4, Flatten, Dense 6) on 64x64x3 images: 1,080 training and 120 test images, as many as
  the course's SIGNS set, made up here (no download), no shift.

Paired timing (``bench/paired.py``): every training step and every scored test chunk of cnnstep
is next to the same call of PyTorch, in alternating order, so load from other processes hits both
alike. An epoch's ratio is its cnnstep time over its PyTorch time, summed over calls paired that
way; the table gives the median epoch ratio, and the 10th-90th percentiles of the per-call
ratios. At N threads PyTorch gets ``set_num_threads(N)`` and cnnstep does what
``cnnstep train --threads N`` does: each batch split into N parts, one in this process and
the others in worker processes (threads while they start), NumPy's BLAS on one thread each.

``Sequential.fit`` (the Python API) runs whole epochs, so it is paired epoch by epoch with
PyTorch's epochs. ``--cli`` also runs ``cnnstep train`` with its defaults end to end and reports
its wall time, test accuracy and peak memory.

Usage::

    PYTHONPATH=src python bench/train.py [--epochs 3] [--threads 1 2] [--cli] [--quick] \
        [--json docs/perf/train.json]

``--json`` also writes what was measured, where and when (``bench/record.py``); the
documentation's performance page shows ``docs/perf/train.json``.

``--quick`` runs a few small batches of each (the CI smoke test: it checks that the benchmark
runs, not how fast).
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
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

from cnnstep.data.builtin import load_data  # noqa: E402
from cnnstep.nn.architectures import build_architecture  # noqa: E402
from cnnstep.nn.optimizers import Adam  # noqa: E402
from cnnstep.train.loop import random_shift  # noqa: E402
from cnnstep.train.runners import PROCESS_MIN_STEPS, make_runner  # noqa: E402

BATCH = 64
EVAL_BATCH = 256
LR = 1e-3


@dataclass
class Bench:
    """A model's data and settings: what both frameworks train on."""

    arch: str
    x_train: np.ndarray  # NHWC float32
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    shift: int


def default_bench(quick: bool) -> Bench:
    data = load_data("mnist5k")
    n, t = (256, 64) if quick else (len(data.y_train), len(data.y_test))
    return Bench("default", data.x_train[:n], data.y_train[:n], data.x_test[:t],
                 data.y_test[:t], data.n_classes, 2)


def signs_bench(quick: bool) -> Bench:
    """64x64x3 images of 6 classes (as many as the course's SIGNS set): each class a colour
    blob in its own place, on noise; learnable, so both frameworks do real work."""
    rng = np.random.default_rng(0)
    n, t = (128, 64) if quick else (1080, 120)
    y = rng.integers(0, 6, size=n + t)
    x = rng.random((n + t, 64, 64, 3), dtype=np.float32) * np.float32(0.5)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 3)
        x[i, 8 + 28 * r: 28 + 28 * r, 4 + 20 * q: 20 + 20 * q, c % 3] += np.float32(0.5)
    return Bench("signs", x[:n], y[:n], x[n:], y[n:], 6, 0)


def torch_twin(arch: str, n_classes: int):
    import torch
    from torch import nn

    torch.manual_seed(0)
    # PyTorch warns that "same" with an even kernel pads a copy of the input: it is timed as is.
    warnings.filterwarnings("ignore", message="Using padding='same'")
    if arch == "default":
        layers = [
            nn.Conv2d(1, 16, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, n_classes),
        ]
    else:  # signs: 64 -> 64 -> 8 -> 8 -> 2 ("same" pooling needs no padding at these sizes)
        layers = [
            nn.Conv2d(3, 8, 4, padding="same"), nn.ReLU(), nn.MaxPool2d(8),
            nn.Conv2d(8, 16, 2, padding="same"), nn.ReLU(), nn.MaxPool2d(4),
            nn.Flatten(), nn.Linear(16 * 2 * 2, n_classes),
        ]
    net = nn.Sequential(*layers)
    return net, torch.optim.Adam(net.parameters(), lr=LR)


def nchw(x: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


class Sides:
    """One model of each framework and the calls of an epoch, step by step."""

    def __init__(self, b: Bench, threads: int, epochs: int) -> None:
        import torch

        self.b = b
        shape = b.x_train.shape[1:]
        self.model = build_architecture(b.arch, shape, b.n_classes, seed=0)
        # as `cnnstep train` makes it for a run of this many epochs (worker processes from
        # PROCESS_MIN_STEPS steps on)
        steps = epochs * -(-len(b.y_train) // BATCH)
        self.runner = make_runner(self.model, threads, batch_size=BATCH, steps=steps)
        self.opt = Adam(LR)
        self.net, self.topt = torch_twin(b.arch, b.n_classes)
        self.y_train = torch.from_numpy(b.y_train.astype(np.int64))
        self.x_test = nchw(b.x_test)

    def calls(self, perm: np.ndarray, epoch: int):
        """Pairs of zero-argument calls (cnnstep, PyTorch): the epoch's steps, then scoring."""
        import torch
        from torch.nn import functional

        b = self.b
        rng_a, rng_b = np.random.default_rng(epoch), np.random.default_rng(epoch)
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]

            def ours(idx=idx):
                xb = random_shift(b.x_train[idx], b.shift, rng_a)
                self.runner.train_step(xb, b.y_train[idx], self.opt)

            def theirs(idx=idx):
                self.net.train()
                xb = nchw(random_shift(b.x_train[idx], b.shift, rng_b))
                self.topt.zero_grad()
                functional.cross_entropy(self.net(xb), self.y_train[idx]).backward()
                self.topt.step()

            yield ours, theirs
        for i in range(0, len(b.y_test), EVAL_BATCH):
            def ours_eval(i=i):
                self.runner.evaluate(b.x_test[i:i + EVAL_BATCH], b.y_test[i:i + EVAL_BATCH])

            def theirs_eval(i=i):
                self.net.eval()
                with torch.no_grad():
                    self.net(self.x_test[i:i + EVAL_BATCH])

            yield ours_eval, theirs_eval

    def torch_epoch(self, perm: np.ndarray, epoch: int) -> None:
        for _, theirs in self.calls(perm, epoch):
            theirs()

    def close(self) -> None:
        self.runner.close()


def paired_epochs(b: Bench, threads: int, epochs: int, rng) -> tuple[list[float], list[float],
                                                                    list[float], Sides]:
    """Per-epoch seconds of each side and the per-call ratios, calls paired one by one."""
    sides = Sides(b, threads, epochs + 1)
    ours_s, theirs_s, call_ratios = [], [], []
    for epoch in range(epochs + 1):  # epoch 0 warms up (first-call costs), not counted
        perm = rng.permutation(len(b.y_train))
        ta = tb = 0.0
        for k, (ours, theirs) in enumerate(sides.calls(perm, epoch)):
            p = paired.paired_times(ours, theirs, 1, warmup=0) if k % 2 == 0 else None
            if p is None:  # odd calls: PyTorch first
                q = paired.paired_times(theirs, ours, 1, warmup=0)
                p = paired.Paired(q.theirs, q.ours)
            ta += p.ours[0]
            tb += p.theirs[0]
            if epoch:
                call_ratios.append(p.ratios[0])
        if epoch:
            ours_s.append(ta)
            theirs_s.append(tb)
    return ours_s, theirs_s, call_ratios, sides


def fit_epochs(b: Bench, threads: int, epochs: int, rng) -> paired.Paired:
    """``Sequential.fit`` one epoch at a time against PyTorch epochs, alternating order."""
    sides = Sides(b, threads, 1)
    model = sides.model

    def ours() -> None:
        model.fit(b.x_train, b.y_train, epochs=1, batch_size=BATCH, optimizer=sides.opt,
                  validation_data=(b.x_test, b.y_test), augment_shift=b.shift, threads=threads)

    def theirs() -> None:
        sides.torch_epoch(rng.permutation(len(b.y_train)), 0)

    try:
        return paired.paired_times(ours, theirs, epochs)
    finally:
        sides.close()


def model_rows(b: Bench, threads: int, epochs: int) -> list[tuple[str, list]]:
    """Each row as printed, with its values for the JSON report (``bench/record.py``)."""
    rng = np.random.default_rng(0)
    ours, theirs, calls, sides = paired_epochs(b, threads, epochs, rng)
    acc = sides.model.evaluate(b.x_test, b.y_test)["accuracy"]
    sides.close()
    ratios = [a / t for a, t in zip(ours, theirs)]
    lo, hi = paired.percentile(calls, 10), paired.percentile(calls, 90)
    values = [f"{b.arch} (CLI path)", statistics.median(ours), statistics.median(theirs),
              statistics.median(ratios), lo, hi, acc]
    lines = [(f"{b.arch + ' (CLI path)':<24} {statistics.median(ours):10.3f} "
              f"{statistics.median(theirs):10.3f} {statistics.median(ratios):7.2f} "
              f"{lo:6.2f}-{hi:<6.2f}  epochs {', '.join(f'{r:.2f}' for r in ratios)}; "
              f"test acc {acc:.1%}", values)]
    with paired.threads(threads):  # fit as a user calls it: BLAS on as many threads
        p = fit_epochs(b, threads, epochs, rng)
    lo, hi = p.spread()
    lines.append((f"{b.arch + ' (Sequential.fit)':<24} {p.ms()[0] / 1e3:10.3f} "
                  f"{p.ms()[1] / 1e3:10.3f} {p.ratio:7.2f} {lo:6.2f}-{hi:<6.2f}  "
                  f"epochs {', '.join(f'{r:.2f}' for r in p.ratios)}",
                  [f"{b.arch} (Sequential.fit)", *record.paired_values(p, 1e-3), None]))
    return lines


# The columns of the JSON report's tables (seconds per epoch; accuracy of the CLI path's model).
COLUMNS = [*record.paired_columns("model", unit="s"),
           {"title": "test accuracy", "format": ".1%"}]


# Runs the CLI in a child that reports its own peak resident memory (VmHWM, of this process
# image only: the rusage of a child forked from this benchmark would count PyTorch's pages too),
# and that of its largest worker process.
_CLI_CHILD = """
import atexit, runpy, sys
def peak():
    import resource
    with open("/proc/self/status") as fh:
        kib = next((line.split()[1] for line in fh if line.startswith("VmHWM")), "0")
    print(f"peak-kib {kib}", file=sys.stderr)
    # the largest worker process (ended by then: this runs after cnnstep's own exit handlers)
    print(f"worker-kib {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}", file=sys.stderr)
atexit.register(peak)
sys.argv = ["cnnstep", *sys.argv[1:]]
runpy.run_module("cnnstep", run_name="__main__", alter_sys=True)
"""


def cli_end_to_end(report: record.Report | None = None) -> str:
    """``cnnstep train`` with its defaults, in a child: wall time, test accuracy, peak memory
    (also recorded in ``report``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _CLI_CHILD, "train", "--out", out,
                               "--no-plots"], check=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(os.path.join(out, "metrics.json"), encoding="utf-8") as fh:
            metrics = json.load(fh)
    kib = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("peak-kib")]
    peak = f"{int(kib[-1]) / 1024:.0f} MiB" if kib and kib[-1] != "0" else "unknown"
    worker = [line.split()[1] for line in done.stderr.splitlines()
              if line.startswith("worker-kib")]
    if worker and worker[-1] != "0":
        peak += f" (and {int(worker[-1]) / 1024:.0f} MiB in each worker process)"
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if report is not None:
        report.set("cli", {"threads": metrics["settings"]["threads"],
                           "epochs": len(metrics["epochs"]), "wall_s": round(wall, 2),
                           "cpu_s": round(cpu, 2),
                           "seconds_per_epoch": round(metrics["seconds_per_epoch"], 3),
                           "test_accuracy": metrics["test_accuracy"], "peak_memory": peak})
    return (f"cnnstep train (defaults, {metrics['settings']['threads']} threads, "
            f"{len(metrics['epochs'])} epochs): {wall:.1f} s wall "
            f"({cpu:.1f} s of "
            f"CPU: what a busy machine does not inflate as much), "
            f"{metrics['seconds_per_epoch']:.2f} s/epoch, test accuracy "
            f"{metrics['test_accuracy']:.2%}, peak memory {peak}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after a warm-up)")
    parser.add_argument("--models", nargs="+", default=["default", "signs"],
                        choices=["default", "signs"])
    parser.add_argument("--cli", action="store_true",
                        help="also run `cnnstep train` with its defaults end to end")
    paired.add_common_options(parser, "a few small batches, one epoch (CI smoke)")
    args = parser.parse_args(argv)
    epochs = paired.repeats(parser, args, "epochs", quick=1, least=1)

    title = "cnnstep / PyTorch, seconds per epoch (train steps + scoring the test set)"
    paired.header(title)
    from cnnstep import backends

    report = record.Report("train", f"{title}, median of {epochs} epochs")
    report.set("onednn", backends.status())
    benches = {"default": default_bench, "signs": signs_bench}
    for n in args.threads:
        parts = (f"splits each batch into {n} parts (all but one in worker processes for runs of "
                 f"{PROCESS_MIN_STEPS} steps or more)" if n > 1
                 else "runs each batch whole")
        print(f"\n{n} thread{'s' if n > 1 else ''}: PyTorch set_num_threads({n}); cnnstep "
              f"{parts}, BLAS on 1 thread each")
        print(f"{'model':<24} {'cnnstep s':>10} {'torch s':>10} {'ratio':>7} {'10-90%':>13}")
        table = report.table(f"{n} thread{'s' if n > 1 else ''}: cnnstep {parts}", COLUMNS)
        for name in args.models:
            b = benches[name](args.quick)
            with paired.threads(n, blas=1):
                for line, values in model_rows(b, n, epochs):
                    print(line, flush=True)
                    table.add(*values)
        print(f"load average: {paired.load_average()}")
    if args.cli:
        print("\n" + cli_end_to_end(report))
        print(f"load average: {paired.load_average()}")
    if args.json:
        report.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

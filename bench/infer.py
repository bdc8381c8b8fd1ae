"""Inference of cnnstep's models against ONNX Runtime and PyTorch, call by call.

Two models, each with its weights as built (seed 0): ``default`` (Conv 16 3x3, ReLU, MaxPool 2,
Conv 32 3x3, ReLU, MaxPool 2, Flatten, Dense 10) on 4,096 images of 28x28x1, and the course's
``signs`` (Conv 8 4x4, ReLU, MaxPool 8, Conv 16 2x2, ReLU, MaxPool 4, Flatten, Dense 6) on 1,024
images of 64x64x3. One call is the whole set in batches of ``--batch`` (256, ``predict_proba``'s
default), on each side:

- ``predict_proba`` (and ``predict``, ``evaluate``): cnnstep's ``Sequential`` methods with
  ``cnnstep.config`` ``threads=N``;
- ``onnxruntime``: the file :func:`cnnstep.interop.to_onnx` writes, one ``InferenceSession``
  with its default graph optimizations and ``intra_op_num_threads=N``, ``run`` per batch;
- ``PyTorch``: :func:`cnnstep.interop.to_torch`'s module (NHWC images read as channels-last
  NCHW tensors, its weights channels-last too), ``torch.set_num_threads(N)``, ``no_grad``;
- ``predict_proba, NumPy only``: the ``backend="numpy"`` setting, against onnxruntime.

The two sides are called in turn (A B, B A, ...; ``bench/paired.py``), and each row gives the
median of the paired time ratios cnnstep / other with their 10th-90th percentiles, and cnnstep's
images per second. Idle threads sleep rather than spin on both sides (``OMP_WAIT_POLICY``,
``OPENBLAS_THREAD_TIMEOUT``, and onnxruntime's ``session.intra_op.allow_spinning = 0``), unless
``--spin``: a spinning thread of one side would take the cores from the other's next call.

Usage::

    PYTHONPATH=src python bench/infer.py [--threads 1 2] [--pairs 11] [--batch 256]
        [--models default signs] [--quick] [--spin] [--json docs/perf/infer.json]

``--quick`` runs a few tiny batches (the CI smoke test: it checks that the benchmark runs, not
how fast). onnxruntime and PyTorch rows are left out when the library is not installed.
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
import contextlib  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

import cnnstep.config as cfg  # noqa: E402
from cnnstep.nn.architectures import build_architecture  # noqa: E402

#: (architecture, image shape, classes, images) of each model; --quick: tiny sets
MODELS = {"default": ((28, 28, 1), 10, 4096), "signs": ((64, 64, 3), 6, 1024)}
QUICK_IMAGES = 24


@dataclass
class Setup:
    """One model, its images, labels and exported twins."""

    name: str
    model: Any
    x: np.ndarray
    y: np.ndarray
    onnx_path: str | None
    batch: int


def make_setup(name: str, images: int, batch: int, folder: str) -> Setup:
    shape, classes, _ = MODELS[name]
    model = build_architecture(name, shape, classes, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((images, *shape), dtype=np.float32)
    y = rng.integers(0, classes, images)
    path = None
    try:
        import onnxruntime  # noqa: F401

        from cnnstep.interop import to_onnx
        path = str(to_onnx(model, os.path.join(folder, f"{name}.onnx")))
    except ImportError:
        pass
    return Setup(name, model, x, y, path, batch)


def in_batches(fn: Callable[[np.ndarray], object], x: np.ndarray, batch: int
               ) -> Callable[[], None]:
    def run() -> None:
        for i in range(0, len(x), batch):
            fn(x[i:i + batch])
    return run


def onnx_call(s: Setup, threads: int, spin: bool) -> Callable[[], None] | None:
    if s.onnx_path is None:
        return None
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(s.onnx_path, options, providers=["CPUExecutionProvider"])
    return in_batches(lambda b: session.run(["probabilities"], {"input": b}), s.x, s.batch)


def torch_call(s: Setup) -> Callable[[], None] | None:
    try:
        import torch
    except ImportError:
        return None
    from cnnstep.interop import to_torch

    module = to_torch(s.model).eval().to(memory_format=torch.channels_last)

    def one(b: np.ndarray) -> None:
        with torch.no_grad():  # the module reads NHWC as channels-last NCHW, gives softmax
            module(torch.from_numpy(b))
    return in_batches(one, s.x, s.batch)


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    with cfg.config_context(backend=name):
        yield


def rows_for(s: Setup, threads: int, pairs: int, spin: bool
             ) -> list[tuple[str, str, paired.Paired]]:
    """(what, against, paired times) of one model at one thread count."""
    m = s.model
    ours = {
        "predict_proba": lambda: m.predict_proba(s.x, s.batch),
        "predict": lambda: m.predict(s.x, s.batch),
        "evaluate": lambda: m.evaluate(s.x, s.y, s.batch),
    }
    ort_run, torch_run = onnx_call(s, threads, spin), torch_call(s)
    out = []
    if ort_run is not None:
        for what, fn in ours.items():
            out.append((what, "onnxruntime", paired.paired_times(fn, ort_run, pairs)))
    if torch_run is not None:
        out.append(("predict_proba", "PyTorch",
                    paired.paired_times(ours["predict_proba"], torch_run, pairs)))
    if ort_run is not None:
        def numpy_only() -> None:
            with backend("numpy"):
                m.predict_proba(s.x, s.batch)
        out.append(("predict_proba, NumPy only", "onnxruntime",
                    paired.paired_times(numpy_only, ort_run, pairs)))
    return out


def print_row(s: Setup, what: str, against: str, p: paired.Paired) -> None:
    ours, theirs = p.ms()
    lo, hi = p.spread()
    print(f"{s.name:<8} {what:<26} {against:<12} {ours:10.1f} {theirs:10.1f} {p.ratio:7.2f} "
          f"{lo:6.2f}-{hi:<6.2f} {len(s.x) / ours * 1e3:10,.0f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=11,
                        help="timed pairs per row, at least 3 (default 11)")
    parser.add_argument("--batch", type=int, default=256, help="images per batch (default 256)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS),
                        default=list(MODELS), help="the models to run (default: both)")
    paired.add_common_options(parser, "tiny sets, 3 pairs (CI smoke)")
    args = parser.parse_args(argv)
    pairs = paired.repeats(parser, args, "pairs", quick=3, least=3)
    if args.batch < 1:
        parser.error("--batch must be positive")
    paired.header("cnnstep inference / onnxruntime and PyTorch, median of paired ratios")
    from cnnstep import backends

    report = record.Report("infer", f"Inference against onnxruntime and PyTorch, {pairs} paired "
                                    "calls per row")
    report.set("onednn", backends.onednn.describe())
    with tempfile.TemporaryDirectory() as folder:
        setups = [make_setup(name, QUICK_IMAGES if args.quick else MODELS[name][2],
                             8 if args.quick else args.batch, folder) for name in args.models]
        for n in args.threads:
            title = f"{n} thread{'s' if n > 1 else ''}"
            print(f"\n{title}:\n{'model':<8} {'cnnstep':<26} {'against':<12} {'cnnstep ms':>10} "
                  f"{'other ms':>10} {'ratio':>7} {'10-90%':>13} {'images/s':>10}")
            table = report.table(title, [
                {"title": "model"}, {"title": "cnnstep"}, {"title": "against"},
                {"title": "cnnstep ms", "format": ".1f"}, {"title": "other ms", "format": ".1f"},
                {"title": "ratio", "format": ".2f", "bold": True},
                {"title": "10-90 %", "format": ".2f", "span": 2},
                {"title": "cnnstep images/s", "format": ",.0f"}])
            with paired.threads(n), cfg.config_context(threads=n):
                for s in setups:
                    for what, against, p in rows_for(s, n, pairs, args.spin):
                        print_row(s, what, against, p)
                        ours, theirs = p.ms()
                        table.add(f"{s.name} ({len(s.x):,} images)", what, against, ours,
                                  theirs, p.ratio, *p.spread(), len(s.x) / ours * 1e3)
            table.notes.append(f"Batches of {setups[0].batch}; load average at the end "
                               f"{paired.load_average()}.")
            print(f"load average: {paired.load_average()}")
    if args.json:
        report.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

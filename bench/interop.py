"""Inference throughput (images per second) of the ``default`` model on 20,000 28x28 images:
in this process, through dask on one machine, on a 2-worker ``distributed.LocalCluster``, in
ONNX Runtime from the exported file, and in PyTorch and Keras from their exports.

Rows:

- ``numpy``: ``model.predict_proba(x)`` in this process (batches of 256).
- ``dask threads``: :func:`cnnstep.interop.dask.predict_proba` on chunks of ``--chunk`` images,
  dask's local threaded scheduler.
- ``cluster (data sent)``: the same graph on a LocalCluster of 2 worker processes x 1 thread,
  the images shipped from this process with the graph (what ``da.from_array`` gives).
- ``cluster (data on workers)``: the images already persisted on the workers (data that lives
  on the cluster), so only the predictions travel.
- ``onnxruntime``: the file of :func:`cnnstep.interop.to_onnx`, one session, batches of 256.
- ``pytorch module`` / ``torch.export program``: :func:`cnnstep.interop.to_torch` and the
  program :func:`cnnstep.interop.save_torch` writes, loaded back, batches of 256, no_grad.
- ``keras``: :func:`cnnstep.interop.to_keras` on the backend ``KERAS_BACKEND`` names (torch
  when unset), ``predict_on_batch`` on batches of 256.

Rows whose library is not installed are left out; ``--no-cluster`` leaves out the dask rows.

Each row is the best of ``--repeats`` runs. Usage::

    PYTHONPATH=src python bench/interop.py [--images 20000] [--chunk 2500] [--repeats 3]
                                           [--no-cluster] [--json docs/perf/interop.json]

``--json`` also writes what was measured, where and when (``bench/record.py``); the
documentation's performance page shows ``docs/perf/interop.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnstep.interop import dask as cdask
from cnnstep.interop import save_torch, to_keras, to_onnx, to_torch
from cnnstep.nn.architectures import build_architecture

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import record  # noqa: E402  (bench/record.py, beside this file)


def best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def in_batches(fn: Callable[[np.ndarray], object], x: np.ndarray) -> Callable[[], None]:
    def run() -> None:
        for i in range(0, len(x), 256):
            fn(x[i:i + 256])
    return run


def dask_rows(model: Any, x: np.ndarray, chunk: int, repeats: int) -> list[tuple[str, float]]:
    import dask.array as da
    import distributed

    X = da.from_array(x, chunks=(chunk, 28, 28, 1))
    rows = [("dask threads (this machine)", best(
        lambda: cdask.predict_proba(model, X).compute(scheduler="threads"), repeats))]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        expected = model.predict_proba(x)
        got = client.compute(cdask.predict_proba(model, X)).result()
        assert np.abs(got - expected).max() <= 1e-5
        rows.append(("LocalCluster 2x1 (data sent)", best(
            lambda: client.compute(cdask.predict_proba(model, X)).result(), repeats)))
        X_on = client.persist(X)
        distributed.wait(X_on)
        rows.append(("LocalCluster 2x1 (data on workers)", best(
            lambda: client.compute(cdask.predict_proba(model, X_on)).result(), repeats)))
    return rows


def onnx_rows(model: Any, x: np.ndarray, repeats: int) -> list[tuple[str, float]]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        path = to_onnx(model, os.path.join(tmp, "m.onnx"))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        run = in_batches(lambda b: session.run(["probabilities"], {"input": b}), x)
        return [("onnxruntime (this process)", best(run, repeats))]


def torch_rows(model: Any, x: np.ndarray, repeats: int) -> list[tuple[str, float]]:
    try:
        import torch
    except ImportError:
        return []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        program = torch.export.load(str(save_torch(model, os.path.join(tmp, "m.pt2")))).module()
    for name, module in (("pytorch module (to_torch)", to_torch(model)),
                         ("torch.export program", program)):
        with torch.no_grad():
            rows.append((name, best(in_batches(lambda b, m=module: m(torch.from_numpy(b)), x),
                                    repeats)))
    return rows


def keras_rows(model: Any, x: np.ndarray, repeats: int) -> list[tuple[str, float]]:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras  # noqa: F401
    except ImportError:
        return []
    keras_model = to_keras(model)
    backend = os.environ["KERAS_BACKEND"]
    return [(f"keras ({backend} backend)",
             best(in_batches(keras_model.predict_on_batch, x), repeats))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--chunk", type=int, default=2_500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-cluster", action="store_true", help="leave out the dask rows")
    ap.add_argument("--json", metavar="PATH",
                    help="also write what was measured, where and when, as JSON")
    args = ap.parse_args()
    # the 'data sent' row ships the images with the graph on purpose; dask warns about it
    warnings.filterwarnings("ignore", message="Sending large graph")

    model = build_architecture("default", (28, 28, 1), 10, seed=0)
    x = np.random.default_rng(0).random((args.images, 28, 28, 1), dtype=np.float32)
    rows: list[tuple[str, float]] = []
    rows.append(("numpy (this process)", best(lambda: model.predict_proba(x), args.repeats)))
    if not args.no_cluster:
        rows += dask_rows(model, x, args.chunk, args.repeats)
    rows += onnx_rows(model, x, args.repeats)
    rows += torch_rows(model, x, args.repeats)
    rows += keras_rows(model, x, args.repeats)
    print(f"{args.images:,} images 28x28x1, default model, {os.cpu_count()} CPUs, "
          f"chunks of {args.chunk:,}, best of {args.repeats}\n")
    print("| where | seconds | images/s |\n|---|---:|---:|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {args.images / seconds:,.0f} |")
    if args.json:
        report = record.Report("interop", "Inference throughput of the default model")
        table = report.table(
            f"{args.images:,} images 28x28x1, default model, chunks of {args.chunk:,}, best of "
            f"{args.repeats}",
            [{"title": "where"}, {"title": "seconds", "format": ".2f"},
             {"title": "images/s", "format": ",.0f", "bold": True}])
        for name, seconds in rows:
            table.add(name, seconds, args.images / seconds)
        report.write(args.json)


if __name__ == "__main__":
    main()

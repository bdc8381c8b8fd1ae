"""Inference throughput (images per second) of the ``default`` model on 20,000 28x28 images:
in this process, through dask on one machine, on a 2-worker ``distributed.LocalCluster``, and in
ONNX Runtime from the exported file.

Rows:

- ``numpy``: ``model.predict_proba(x)`` in this process (batches of 256).
- ``dask threads``: :func:`cnnstep.interop.dask.predict_proba` on chunks of ``--chunk`` images,
  dask's local threaded scheduler.
- ``cluster (data sent)``: the same graph on a LocalCluster of 2 worker processes x 1 thread,
  the images shipped from this process with the graph (what ``da.from_array`` gives).
- ``cluster (data on workers)``: the images already persisted on the workers (data that lives
  on the cluster), so only the predictions travel.
- ``onnxruntime``: the file of :func:`cnnstep.interop.to_onnx`, one session, batches of 256.

Each row is the best of ``--repeats`` runs. Usage::

    PYTHONPATH=src python bench/interop.py [--images 20000] [--chunk 2500] [--repeats 3] \
        [--json docs/perf/interop.json]

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

import numpy as np

from cnnstep.interop import dask as cdask
from cnnstep.interop import to_onnx
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--chunk", type=int, default=2_500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", metavar="PATH",
                    help="also write what was measured, where and when, as JSON")
    args = ap.parse_args()
    # the 'data sent' row ships the images with the graph on purpose; dask warns about it
    warnings.filterwarnings("ignore", message="Sending large graph")

    import dask.array as da
    import distributed

    model = build_architecture("default", (28, 28, 1), 10, seed=0)
    x = np.random.default_rng(0).random((args.images, 28, 28, 1), dtype=np.float32)
    X = da.from_array(x, chunks=(args.chunk, 28, 28, 1))
    rows: list[tuple[str, float]] = []
    rows.append(("numpy (this process)", best(lambda: model.predict_proba(x), args.repeats)))
    rows.append(("dask threads (this machine)", best(
        lambda: cdask.predict_proba(model, X).compute(scheduler="threads"), args.repeats)))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        expected = model.predict_proba(x)
        got = client.compute(cdask.predict_proba(model, X)).result()
        assert np.abs(got - expected).max() <= 1e-5
        rows.append(("LocalCluster 2x1 (data sent)", best(
            lambda: client.compute(cdask.predict_proba(model, X)).result(), args.repeats)))
        X_on = client.persist(X)
        distributed.wait(X_on)
        rows.append(("LocalCluster 2x1 (data on workers)", best(
            lambda: client.compute(cdask.predict_proba(model, X_on)).result(), args.repeats)))
    try:
        import onnxruntime as ort
    except ImportError:
        pass
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = to_onnx(model, os.path.join(tmp, "m.onnx"))
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

            def run_ort() -> None:
                for i in range(0, len(x), 256):
                    session.run(["probabilities"], {"input": x[i:i + 256]})

            rows.append(("onnxruntime (this process)", best(run_ort, args.repeats)))
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

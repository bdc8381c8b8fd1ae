"""Seconds per epoch of cnnstep's default model against a PyTorch twin, side by side.

Both train the ``default`` architecture (Conv 16 3x3 same, ReLU, MaxPool 2, Conv 32 3x3 same,
ReLU, MaxPool 2, Flatten, Dense 10) on mnist5k's 4,000 training images with Adam (lr 1e-3),
batch 64, float32, the same shuffling and the same augmentation, and score the 1,000 test images
after each epoch; an epoch's time covers both. Epochs alternate between the two frameworks so that
load from other processes hits both alike. At N threads, PyTorch gets ``set_num_threads(N)`` and
cnnstep does what ``cnnstep train --threads N`` does: each batch is split between N threads, with
NumPy's BLAS limited to one thread (through threadpoolctl).

Usage::

    PYTHONPATH=src python bench/train.py [--epochs 3] [--threads 1 2] [--profile]

Target (issue 4): cnnstep's median seconds per epoch <= 3x PyTorch's at the same thread count.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np

from cnnstep.data.builtin import load_data
from cnnstep.nn.architectures import build_architecture
from cnnstep.nn.optimizers import Adam
from cnnstep.train.loop import make_runner, random_shift

BATCH = 64
LR = 1e-3
SHIFT = 2  # the default augmentation of `cnnstep train` on 28x28 images


def cnnstep_epoch(runner, opt, data, perm, rng) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(perm), BATCH):
        idx = perm[i:i + BATCH]
        runner.train_step(random_shift(data.x_train[idx], SHIFT, rng), data.y_train[idx], opt)
    runner.evaluate(data.x_test, data.y_test)
    return time.perf_counter() - t0


def torch_twin(n_classes: int):
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, n_classes),
    )
    return net, torch.optim.Adam(net.parameters(), lr=LR)


def torch_epoch(net, opt, data, perm, rng) -> float:
    import torch
    from torch.nn import functional

    y_train = torch.from_numpy(data.y_train)
    x_test = torch.from_numpy(np.ascontiguousarray(data.x_test.transpose(0, 3, 1, 2)))
    t0 = time.perf_counter()
    net.train()
    for i in range(0, len(perm), BATCH):
        idx = perm[i:i + BATCH]
        xb = random_shift(data.x_train[idx], SHIFT, rng).transpose(0, 3, 1, 2)
        xb = torch.from_numpy(np.ascontiguousarray(xb))
        opt.zero_grad()
        loss = functional.cross_entropy(net(xb), y_train[idx])
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        for i in range(0, x_test.shape[0], 256):
            net(x_test[i:i + 256])
    return time.perf_counter() - t0


def profile_step(model, data, rng, repeats: int = 20) -> list[tuple[str, float, float]]:
    """Milliseconds of each layer's forward and backward on one training batch."""
    from cnnstep.nn.losses import softmax_cross_entropy

    xb = random_shift(data.x_train[:BATCH], SHIFT, rng)
    layers = model.run_order()  # as training runs them (ReLU after max pooling)
    rows = []
    fwd = {i: [] for i in range(len(layers))}
    bwd = {i: [] for i in range(len(layers))}
    shapes = {}
    for _ in range(repeats):
        x = xb
        for i, layer in enumerate(layers):
            shapes[i] = x.shape
            t = time.perf_counter()
            x = layer.forward(x, training=True)
            fwd[i].append(time.perf_counter() - t)
        _, d, _ = softmax_cross_entropy(x, data.y_train[:BATCH])
        for i in reversed(range(len(layers))):
            t = time.perf_counter()
            d = layers[i].backward(d)
            bwd[i].append(time.perf_counter() - t)
    for i, layer in enumerate(layers):
        rows.append((f"{layer.describe()} {shapes[i]}",
                     1e3 * statistics.median(fwd[i]), 1e3 * statistics.median(bwd[i])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+",
                        default=sorted({1, os.cpu_count() or 1}),
                        help="thread counts to compare at (default: 1 and all CPUs)")
    parser.add_argument("--profile", action="store_true", help="per-layer milliseconds too")
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    data = load_data("mnist5k")
    steps = math.ceil(len(data.y_train) / BATCH)
    print(f"default model on mnist5k: {len(data.y_train)} train + {len(data.y_test)} test images, "
          f"batch {BATCH} ({steps} steps/epoch), Adam lr {LR:g}, float32, shift {SHIFT}")
    print(f"numpy {np.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        # as `cnnstep train --threads N`: the batch split between N threads, BLAS on 1 each
        with threadpool_limits(limits=1, user_api="blas"):
            model = build_architecture("default", data.input_shape, data.n_classes, seed=0)
            runner = make_runner(model, threads)
            opt = Adam(LR)
            net, topt = torch_twin(data.n_classes)
            rng = np.random.default_rng(0)
            ours, theirs = [], []
            # one warm-up epoch each (first-call costs, allocator), not counted
            for epoch in range(args.epochs + 1):
                perm = rng.permutation(len(data.y_train))
                a = cnnstep_epoch(runner, opt, data, perm, np.random.default_rng(epoch))
                b = torch_epoch(net, topt, data, perm, np.random.default_rng(epoch))
                if epoch:
                    ours.append(a)
                    theirs.append(b)
            acc = model.evaluate(data.x_test, data.y_test)["accuracy"]
            runner.close()
            mo, mt = statistics.median(ours), statistics.median(theirs)
            ratio = mo / mt
            print(f"threads {threads}: cnnstep {mo:.3f} s/epoch "
                  f"({', '.join(f'{t:.2f}' for t in ours)}), "
                  f"pytorch {mt:.3f} s/epoch ({', '.join(f'{t:.2f}' for t in theirs)}), "
                  f"ratio {ratio:.2f}x  [target <= 3x: {'PASS' if ratio <= 3 else 'FAIL'}]  "
                  f"(cnnstep test acc after {args.epochs + 1} epochs {acc:.2%})")
            if args.profile and threads == args.threads[0]:
                print(f"  per layer in one thread, batch {BATCH}, median ms "
                      "(forward / backward):")
                for name, f, b in profile_step(model, data, np.random.default_rng(0)):
                    print(f"    {name:<48} {f:7.2f} / {b:7.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

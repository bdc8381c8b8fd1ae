"""``cnnstep demo``: the eight functions on the material's published examples."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

import cnnstep
from cnnstep import reference
from cnnstep.ops.published import PUBLISHED_CASES, matches

# Place in `cnnstep --help`.
ORDER = 10
# It reads no file, so it takes no --max-memory (see cnnstep.cli.main).
READS_FILES = False


def _short(value: Any) -> str:
    if isinstance(value, tuple):
        return str(value)
    arr = np.asarray(value)
    if arr.ndim == 0:
        return f"{arr.item():.16g}"
    flat = np.array2string(arr.reshape(-1)[:3], precision=8, separator=", ")
    return f"{flat[:-1]}{', ...' if arr.size > 3 else ''}] {arr.shape}"


def run(args: argparse.Namespace) -> int:
    ops = reference if args.reference else cnnstep
    print(f"cnnstep {cnnstep.__version__}: the eight step-by-step functions "
          f"({'reference loops' if args.reference else 'vectorized'}) on the published cases\n")
    failures = 0
    for case in PUBLISHED_CASES:
        inputs = case.inputs(cnnstep)
        start = time.perf_counter()
        result = getattr(ops, case.function)(*inputs)
        ms = (time.perf_counter() - start) * 1e3
        observed = case.observe(result)
        print(f"{case.function}({case.label})  [{ms:.2f} ms]")
        for name, expected in case.expected.items():
            ok = matches(expected, observed[name])
            failures += not ok
            print(f"  {'ok  ' if ok else 'FAIL'} {name:<14} {_short(observed[name])}")
            if not ok:
                print(f"       published     {_short(expected)}")
    total = sum(len(c.expected) for c in PUBLISHED_CASES)
    print(f"\n{total - failures} of {total} published values reproduced.")
    return 0 if failures == 0 else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the eight functions on the published examples",
        description="Run the eight step-by-step functions on the material's published "
        "examples and compare every printed value.",
    )
    parser.add_argument("--reference", action="store_true",
                        help="use the loop versions from cnnstep.reference")
    parser.set_defaults(handler=run)

"""The benchmarks run (``--quick``: tiny sizes) and print their tables; their timings are not
checked here (performance is measured in bench/, never asserted in a test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the benchmarks compare with PyTorch (test extra)")
pytest.importorskip("threadpoolctl", reason="the benchmarks set thread counts with threadpoolctl")

ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_ops_bench_prints_paired_table_at_1_and_2_threads():
    out = run_bench("ops.py")
    assert "1 thread (" in out and "2 threads (" in out
    assert out.count("geometric mean of the median ratios") == 2
    assert "conv 2x8x8x3->4 f4 s1 psame" in out
    assert "load average" in out


def test_train_bench_prints_both_models_and_fit():
    out = run_bench("train.py")
    for label in ("default (CLI path)", "default (Sequential.fit)", "signs (CLI path)",
                  "signs (Sequential.fit)"):
        assert out.count(label) == 2, label  # once per thread count
    assert "load average" in out

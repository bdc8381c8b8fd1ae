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


def run_bench(script: str, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", *args],
                          env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == code, done.stderr[-2000:]
    return done


def test_ops_bench_prints_paired_table_at_1_and_2_threads():
    out = run_bench("ops.py").stdout
    assert "1 thread (" in out and "2 threads (" in out
    assert out.count("geometric mean of the median ratios") == 2
    assert "conv 2x8x8x3->4 f4 s1 psame" in out
    assert "load average" in out


def test_train_bench_prints_both_models_and_fit():
    out = run_bench("train.py").stdout
    for label in ("default (CLI path)", "default (Sequential.fit)", "signs (CLI path)",
                  "signs (Sequential.fit)"):
        assert out.count(label) == 2, label  # once per thread count
    assert "load average" in out


def test_ops_bench_times_the_layers_and_shapes_of_your_own():
    out = run_bench("ops.py", "--layers", "--threads", "1", "--case",
                    "conv 2x9x9x5->3 f3 s2 p1", "max pool 2x8x8x4 f2 s2").stdout
    assert "cnnstep layers (training forward + backward)" in out
    assert "conv 2x9x9x5->3 f3 s2 p1" in out and "max pool 2x8x8x4 f2 s2" in out
    assert out.count("geometric mean of the median ratios") == 1
    bad = run_bench("ops.py", "--case", "conv 2x9x9x5 f3", code=2)
    assert "--case: a convolution needs '->filters'" in bad.stderr

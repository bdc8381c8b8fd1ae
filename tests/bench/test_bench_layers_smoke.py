"""bench/layers.py runs (``--quick``) and prints every row; its timings are not checked here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the benchmark compares with PyTorch (test extra)")
pytest.importorskip("threadpoolctl", reason="the benchmark sets thread counts with threadpoolctl")

ROOT = Path(__file__).resolve().parents[2]


def test_layers_bench_prints_every_layer_and_both_models():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "layers.py"), "--quick"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    for label in ("BatchNorm2D 32x64x64x32 (happy's)", "ZeroPadding2D(3)", "GlobalMaxPool2D",
                  "LeakyReLU", "Sigmoid", "Tanh", "happy", "resnet", "load average at end"):
        assert label in done.stdout, label

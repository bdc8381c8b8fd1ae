"""The benchmarks run (``--quick``: tiny sizes) and print their tables; their timings are not
checked here (performance is measured in bench/, never asserted in a test)."""

from __future__ import annotations

import json
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


def test_ops_bench_prints_paired_table_at_1_and_2_threads(tmp_path):
    out = run_bench("ops.py", "--json", str(tmp_path / "ops.json")).stdout
    assert "1 thread (" in out and "2 threads (" in out
    assert out.count("geometric mean of the median ratios") == 2
    assert "conv 2x8x8x3->4 f4 s1 psame" in out
    assert "load average" in out
    # the JSON the documentation's performance page is rendered from (bench/record.py)
    report = json.loads((tmp_path / "ops.json").read_text())
    assert report["benchmark"] == "ops" and report["command"].startswith("python bench/ops.py")
    assert {"cpu", "cores", "cpu_flags", "blas", "load_average"} <= set(report["machine"])
    assert "numpy" in report["versions"] and "torch" in report["versions"]
    assert [t["title"].split(" (")[0] for t in report["tables"]] == ["1 thread", "2 threads"]
    rows = report["tables"][0]["rows"]
    assert [r[0] for r in rows][1] == "conv 2x8x8x3->4 f4 s1 psame"
    assert all(isinstance(v, float) and v > 0 for r in rows for v in r[1:6])


def test_train_bench_prints_both_models_and_fit(tmp_path):
    out = run_bench("train.py", "--json", str(tmp_path / "train.json")).stdout
    labels = ("default (CLI path)", "default (Sequential.fit)", "signs (CLI path)",
              "signs (Sequential.fit)")
    for label in labels:
        assert out.count(label) == 2, label  # once per thread count
    assert "load average" in out
    report = json.loads((tmp_path / "train.json").read_text())
    assert report["benchmark"] == "train" and len(report["tables"]) == 2
    for table in report["tables"]:
        assert tuple(r[0] for r in table["rows"]) == labels
        assert 0 <= table["rows"][0][-1] <= 1  # the CLI path's test accuracy


def test_ops_bench_times_the_layers_and_shapes_of_your_own():
    out = run_bench("ops.py", "--layers", "--threads", "1", "--case",
                    "conv 2x9x9x5->3 f3 s2 p1", "max pool 2x8x8x4 f2 s2").stdout
    assert "cnnstep layers (training forward + backward)" in out
    assert "conv 2x9x9x5->3 f3 s2 p1" in out and "max pool 2x8x8x4 f2 s2" in out
    assert out.count("geometric mean of the median ratios") == 1
    bad = run_bench("ops.py", "--case", "conv 2x9x9x5 f3", code=2)
    assert "--case: a convolution needs '->filters'" in bad.stderr


def test_infer_bench_compares_both_models_and_writes_nothing_else(tmp_path):
    pytest.importorskip("onnxruntime", reason="bench/infer.py compares with onnxruntime")
    before = set(ROOT.iterdir())
    out = run_bench("infer.py", "--json", str(tmp_path / "infer.json")).stdout
    assert "1 thread:" in out and "2 threads:" in out and "load average" in out
    report = json.loads((tmp_path / "infer.json").read_text())
    assert report["benchmark"] == "infer"
    assert [t["title"] for t in report["tables"]] == ["1 thread", "2 threads"]
    for table in report["tables"]:
        rows = [(r[0].split(" (")[0], r[1], r[2]) for r in table["rows"]]
        for model in ("default", "signs"):
            assert (model, "predict_proba", "onnxruntime") in rows
            assert (model, "predict_proba", "PyTorch") in rows
            assert (model, "predict_proba, NumPy only", "onnxruntime") in rows
        assert all(r[5] > 0 for r in table["rows"])  # the ratios
    assert set(ROOT.iterdir()) == before  # no profile or model file left in the repository

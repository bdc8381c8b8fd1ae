"""bench/workers.py runs (``--quick``) and prints its table; its timings are not checked here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_workers_bench_prints_both_ways_and_leaves_no_process():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "workers.py"), "--quick"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    rows = [line for line in lines if line.startswith(("started with each fit", "kept between"))]
    assert len(rows) == 2
    assert all(row.split()[-1] in ("0", "-1") for row in rows)  # nothing alive after a series

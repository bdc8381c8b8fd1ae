"""What a hostile file, name or path can still make the CLI do: nothing but one line.

FIFOs are refused wherever a path is read (never opened, so never waited on), globs do not walk
into symlink loops, and text that came from files (class names, file names) is printed with its
control characters escaped and written to CSV so that no spreadsheet evaluates it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnstep import Dense, Flatten, Sequential

Image = pytest.importorskip("PIL.Image")

SRC = str(Path(__file__).resolve().parents[2] / "src")
ESCAPE = "\x1b]0;pwned\x07\x1b[31m"


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``cnnstep ARGS`` in a child, so that a hang fails the test instead of stalling it."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "cnnstep", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def _one_line(done: subprocess.CompletedProcess, *fragments: str, notes: int = 0) -> None:
    """Exit 2 and one error line (after ``notes`` lines that say what is being read)."""
    err = done.stderr.strip()
    assert done.returncode == 2, (done.returncode, err)
    assert len(err.splitlines()) == 1 + notes and "Traceback" not in err, err
    err = err.splitlines()[-1]
    for fragment in fragments:
        assert fragment in err, err


def _model(tmp_path: Path, names: list[str], metadata: dict | None = None) -> Path:
    model = Sequential([Flatten(), Dense(len(names))], (4, 4, 1), seed=0, class_names=names)
    path = tmp_path / "model.npz"
    model.save(path, metadata=metadata)
    return path


def _image(path: Path) -> Path:
    Image.fromarray(np.full((4, 4), 128, np.uint8)).save(path)
    return path


def test_class_and_file_names_are_escaped_for_the_terminal(tmp_path):
    model = _model(tmp_path, [ESCAPE + "cat", "dog\nforged line"])
    image = _image(tmp_path / f"x{ESCAPE}.png")
    done = _cli("predict", str(model), str(image), "--top", "2")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "\\x1b]0;pwned\\x07" in done.stdout and "dog\\x0aforged line" in done.stdout
    assert len(done.stdout.strip().splitlines()) == 1


def test_csv_cells_that_a_spreadsheet_would_evaluate_are_quoted(tmp_path):
    model = _model(tmp_path, ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)"])
    image = _image(tmp_path / "=1+2.png")
    done = _cli("predict", str(model), str(image), "--top", "4", "--format", "csv")
    assert done.returncode == 0, done.stderr
    header, row = list(csv.reader(io.StringIO(done.stdout)))
    assert header[0] == "path" and row[0].endswith("=1+2.png")  # a path starts with a folder
    for cell in row[1:9:2]:  # the class names
        assert cell[0] == "'" and cell[1] in "=+-@", row
    json_out = _cli("predict", str(model), str(image), "--format", "json")
    assert json.loads(json_out.stdout)[0]["top"][0]["class"] in ("=HYPERLINK(\"http://x\")",
                                                                 "+1", "-2", "@SUM(A1)")


def test_a_glob_does_not_follow_a_symlink_loop(tmp_path):
    root = tmp_path / "d"
    (root / "sub").mkdir(parents=True)
    _image(root / "a.png")
    _image(root / "sub" / "b.png")
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    (root / "again").symlink_to(root, target_is_directory=True)
    model = _model(tmp_path, ["a", "b"])
    done = _cli("predict", str(model), str(root / "**" / "*.png"), timeout=60)
    assert done.returncode == 0, done.stderr
    printed = sorted(line.split("\t")[0] for line in done.stdout.strip().splitlines())
    assert printed == [str(root / "a.png"), str(root / "sub" / "b.png")]
    folder = _cli("predict", str(model), str(root), timeout=60)  # a folder, recursively
    assert sorted(line.split("\t")[0] for line in folder.stdout.strip().splitlines()) == printed


def test_fifos_are_refused_wherever_a_path_is_read(tmp_path):
    fifo = tmp_path / "data.npz"
    os.mkfifo(fifo)
    _one_line(_cli("train", "--data", str(fifo), "--epochs", "1", "--out",
                   str(tmp_path / "run"), timeout=60), "data.npz", "not a regular file (a FIFO)")
    model = _model(tmp_path, ["a", "b"], metadata={"data": str(fifo)})
    # the line before the error says which data the model file names
    _one_line(_cli("evaluate", str(model), timeout=60), "not a regular file (a FIFO)", notes=1)
    _one_line(_cli("evaluate", str(fifo), timeout=60), "not a regular file (a FIFO)")
    image = tmp_path / "pipe.png"
    os.mkfifo(image)
    done = _cli("predict", str(model), str(image), timeout=60)
    assert done.returncode == 1 and "not a regular file (a FIFO)" in done.stdout

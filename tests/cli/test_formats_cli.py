"""Every data format through the command line: one epoch of `cnnstep train --data PATH`, and each
broken input refused with exit code 2 and one line on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from formats_helpers import (  # noqa: E402
    write_h5,
    write_idx_folder,
    write_image_folder,
    write_npz,
)

from cnnstep.cli.main import main  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"
FAST = ["--epochs", "1", "--batch-size", "8", "--seed", "0", "--no-plots"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    """``cnnstep ARGS`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*args: str) -> subprocess.CompletedProcess:
    """``python -m cnnstep ARGS`` in a fresh process, as a user would run it."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "cnnstep", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def assert_trained(code: int, err: str, out_dir: Path) -> dict:
    assert code == 0, err
    assert (out_dir / "model.npz").is_file()
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 1
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    return metrics


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---------------------------------------------------------------------------------------------
# Each format trains


def test_train_idx_folder(tmp_path, capsys):
    data = write_idx_folder(tmp_path / "mnist", m_train=24, m_test=9, gz=True)
    code, _, err = run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "run")
    assert_trained(code, err, tmp_path / "run")


def test_train_course_hdf5_with_separate_test_file(tmp_path, capsys):
    train = write_h5(tmp_path / "train_signs.h5", parts=("train",), m=12, classes=np.arange(6))
    test = write_h5(tmp_path / "test_signs.h5", parts=("test",), m=6, classes=np.arange(6))
    code, _, err = run(
        capsys, "train", "--data", train, "--test-data", test, "--arch", "signs", *FAST,
        "--out", tmp_path / "run",
    )  # fmt: skip
    assert_trained(code, err, tmp_path / "run")


def test_train_image_folder_then_predict_shows_class_names(tmp_path, capsys):
    root = write_image_folder(tmp_path / "photos", classes=("cat", "dog"), per_class=6, size=(9, 7))
    code, _, err = run(
        capsys, "train", "--data", root, "--image-size", "8", "8", "--test-fraction", "0.34",
        *FAST[:-1], "--out", tmp_path / "run",
    )  # fmt: skip
    assert_trained(code, err, tmp_path / "run")
    assert list((tmp_path / "run").glob("*.png")), "plots with the class names"
    image = root / "dog" / "dog_0.png"
    code, out, err = run(capsys, "predict", tmp_path / "run" / "model.npz", image)
    assert code == 0, err
    assert str(image) in out
    assert "cat" in out or "dog" in out


def test_evaluate_brings_an_image_folder_to_the_model_input_size(tmp_path, capsys):
    root = write_image_folder(tmp_path / "photos", classes=("cat", "dog"), per_class=6, size=(9, 7))
    code, _, err = run(
        capsys, "train", "--data", root, "--image-size", "8", "8", "--test-fraction", "0.34",
        *FAST, "--out", tmp_path / "run",
    )  # fmt: skip
    assert_trained(code, err, tmp_path / "run")
    # No --image-size: the folder's own 9x7 images are resized to the model's 8x8.
    code, out, err = run(capsys, "evaluate", tmp_path / "run" / "model.npz", "--data", root)
    assert code == 0, err
    assert "accuracy" in out


def test_train_npz_split_then_evaluate(tmp_path, capsys):
    data = write_npz(tmp_path / "mine.npz", test=False, m=20)
    code, _, err = run(
        capsys, "train", "--data", data, "--test-fraction", "0.25", *FAST, "--out", tmp_path / "run"
    )
    assert_trained(code, err, tmp_path / "run")
    code, out, err = run(capsys, "evaluate", tmp_path / "run" / "model.npz", "--data", data)
    assert code == 0, err
    assert out.strip()


def test_skipped_files_are_reported_on_stderr(tmp_path):
    root = write_image_folder(tmp_path / "photos", per_class=4)
    (root / "cat" / "notes.txt").write_text("not an image")
    result = run_process("train", "--data", root, *FAST, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "notes.txt" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------
# Each broken input: exit 2, one line naming the file and the problem


def _missing(tmp: Path):
    return ["--data", tmp / "nowhere"], ["nowhere", "no such file or folder"]


def _empty_folder(tmp: Path):
    (tmp / "empty").mkdir()
    return ["--data", tmp / "empty"], ["empty", "empty folder"]


def _truncated_idx(tmp: Path):
    folder = write_idx_folder(tmp / "mnist")
    f = folder / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-5])
    return ["--data", folder], [str(f), "truncated IDX file"]


def _corrupt_idx_gzip(tmp: Path):
    folder = write_idx_folder(tmp / "mnist", gz=True)
    f = folder / "t10k-labels-idx1-ubyte.gz"
    f.write_bytes(b"\x1f\x8b\x08\x00garbage")
    return ["--data", folder], [str(f), "corrupt gzip file"]


def _idx_count_mismatch(tmp: Path):
    folder = write_idx_folder(tmp / "mnist", m_train=10)
    write_idx_folder(tmp / "other", m_train=7)
    os.replace(tmp / "other" / "train-labels-idx1-ubyte", folder / "train-labels-idx1-ubyte")
    return ["--data", folder], ["10 images but train-labels-idx1-ubyte has 7 labels"]


def _truncated_hdf5(tmp: Path):
    path = write_h5(tmp / "train_signs.h5", m=40)
    path.write_bytes(path.read_bytes()[:2500])
    return ["--data", path], [str(path)]


def _hdf5_labels_outside_classes(tmp: Path):
    path = write_h5(tmp / "cats.h5", m=6, train_set_y=np.array([0, 1, 0, 1, 0, 5]))
    return ["--data", path], ["cats.h5", "label 5 at index 5 is outside the 2 class names"]


def _hdf5_test_file_without_test_set(tmp: Path):
    train = write_h5(tmp / "train.h5")
    return ["--data", train, "--test-data", train], ["train.h5", "no test_set_x and test_set_y"]


def _corrupt_image(tmp: Path):
    root = write_image_folder(tmp / "photos", per_class=3)
    (root / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return ["--data", root], ["broken.jpg", "not a readable image"]


def _test_class_not_in_training(tmp: Path):
    write_image_folder(tmp / "d" / "train", per_class=2)
    write_image_folder(tmp / "d" / "test", classes=("zebra",), per_class=1)
    return ["--data", tmp / "d"], ["test class 'zebra' is not one of the training classes"]


def _npz_count_mismatch(tmp: Path):
    path = write_npz(tmp / "mine.npz", y_train=np.arange(5) % 3)
    return ["--data", path], ["mine.npz", "12 images in x_train but 5 labels in y_train"]


def _npz_needs_pickle(tmp: Path):
    x = np.empty(4, dtype=object)
    x[:] = ["a", "b", "c", "d"]
    np.savez(tmp / "obj.npz", x_train=x, y_train=np.zeros(4, np.int64))
    return ["--data", tmp / "obj.npz"], ["obj.npz", "would need pickle"]


def _unknown_format(tmp: Path):
    (tmp / "data.csv").write_text("1,2,3\n")
    return ["--data", tmp / "data.csv"], ["data.csv", "unknown data format"]


def _test_data_in_other_format(tmp: Path):
    train = write_npz(tmp / "a.npz", test=False)
    test = write_image_folder(tmp / "photos", per_class=2)
    return ["--data", train, "--test-data", test], ["photos", "give both in the same format"]


BROKEN = [
    _missing,
    _empty_folder,
    _truncated_idx,
    _corrupt_idx_gzip,
    _idx_count_mismatch,
    _truncated_hdf5,
    _hdf5_labels_outside_classes,
    _hdf5_test_file_without_test_set,
    _corrupt_image,
    _test_class_not_in_training,
    _npz_count_mismatch,
    _npz_needs_pickle,
    _unknown_format,
    _test_data_in_other_format,
]


@pytest.mark.parametrize("make", BROKEN, ids=[f.__name__.strip("_") for f in BROKEN])
def test_train_refuses_broken_data(tmp_path, capsys, make):
    args, fragments = make(tmp_path)
    code, _, err = run(capsys, "train", *args, *FAST, "--out", tmp_path / "run")
    assert_one_line_error(code, err, *fragments)
    assert not (tmp_path / "run" / "model.npz").exists()


def test_broken_data_in_a_fresh_process_is_one_line(tmp_path):
    args, fragments = _truncated_idx(tmp_path)
    result = run_process("train", *args, *FAST, "--out", tmp_path / "run")
    assert_one_line_error(result.returncode, result.stderr, *fragments)


def test_evaluate_refuses_broken_data(tmp_path, capsys):
    data = write_npz(tmp_path / "good.npz")
    code, _, err = run(capsys, "train", "--data", data, *FAST, "--out", tmp_path / "run")
    assert_trained(code, err, tmp_path / "run")
    args, fragments = _npz_needs_pickle(tmp_path)
    code, _, err = run(capsys, "evaluate", tmp_path / "run" / "model.npz", *args)
    assert_one_line_error(code, err, *fragments)

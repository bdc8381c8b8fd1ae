"""The CLI under bad input and faults (issue 14): no lost run, no silent wrong number, one line
and exit 2."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from formats_helpers import write_image_folder, write_npz

from cnnstep.cli.main import main

SRC = str(Path(__file__).resolve().parents[2] / "src")
FAST = ["--data", "digits", "--epochs", "1", "--no-plots", "--threads", "1"]


def one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


# ---------------------------------------------------------------------------------------------
# No lost work


def test_default_folder_gets_a_new_number(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST]) == 0
    first = (tmp_path / "runs/default-digits/model.npz").read_bytes()
    assert main(["train", *FAST, "--seed", "1"]) == 0
    done = [line for line in capsys.readouterr().out.splitlines() if line.startswith("done")]
    assert "runs/default-digits-2/" in done[-1]
    assert (tmp_path / "runs/default-digits/model.npz").read_bytes() == first
    assert (tmp_path / "runs/default-digits-2/model.npz").is_file()


def test_explicit_out_holding_a_run_is_refused(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", *FAST, "--out", out]) == 0
    before = (tmp_path / "r/model.npz").read_bytes()
    capsys.readouterr()
    assert main(["train", *FAST, "--out", out]) == 2
    one_line_error(capsys, "already holds a run", "--resume", "--overwrite")
    assert (tmp_path / "r/model.npz").read_bytes() == before
    assert main(["train", *FAST, "--out", out, "--overwrite", "--seed", "3"]) == 0


def test_resume_epochs_not_past_the_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", *FAST[:3], "2", "--no-plots", "--out", out]) == 0
    capsys.readouterr()
    assert main(["train", "--out", out, "--resume", "--epochs", "1"]) == 2
    one_line_error(capsys, "--epochs 1: the checkpoint has already done 2 epochs")


def test_damaged_checkpoint_on_resume(tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really")
    assert main(["train", "--out", str(out), "--resume"]) == 2
    one_line_error(capsys, "checkpoint.npz")


def test_stale_temp_files_removed_and_umask_followed(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    stale = out / ".checkpoint.npz.abc123.tmp"
    stale.write_bytes(b"half a save")
    old = os.umask(0o022)
    try:
        assert main(["train", *FAST, "--out", str(out)]) == 0
    finally:
        os.umask(old)
    assert not stale.exists()
    assert (out / "model.npz").stat().st_mode & 0o777 == 0o644


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_found_before_training(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(["train", *FAST, "--out", str(out)]) == 2
    finally:
        out.chmod(0o755)
    err = one_line_error(capsys, "cannot write there")
    assert "epoch" not in err


def test_unwritable_output_found_before_training_even_as_root(tmp_path, capsys, monkeypatch):
    import tempfile

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert main(["train", *FAST, "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, "cannot write there (Permission denied)")
    assert not (tmp_path / "r" / "checkpoint.npz").exists()


def test_closed_stdout_does_not_stop_training(tmp_path):
    out = tmp_path / "r"
    cmd = (f"{sys.executable} -m cnnstep train --data digits --epochs 2 --no-plots "
           f"--threads 1 --out {out} | head -1")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout.startswith("training default on digits")
    assert "Traceback" not in proc.stderr
    assert (out / "model.npz").is_file() and (out / "metrics.json").is_file()


# ---------------------------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--seed", "-1"], "--seed: expected an integer >= 0"),
        (["--augment", "1000"], "--augment 1000: shifts of more than a quarter"),
        (["--max-memory", "lots"], "--max-memory must be a size"),
    ],
)
def test_bad_arguments_one_line(tmp_path, capsys, extra, fragment):
    with pytest.raises(SystemExit) if extra[0] == "--seed" else contextlib.nullcontext():
        rc = main(["train", *FAST, "--out", str(tmp_path / "r"), *extra])
        assert rc == 2
    one_line_error(capsys, fragment)


def test_class_names_that_break_matplotlib(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    root = write_image_folder(tmp_path / "p", classes=("$\\sqrt{$", "plain"), per_class=6)
    assert main(["train", "--data", str(root), "--epochs", "1", "--threads", "1",
                 "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "confusion_matrix.png").is_file()


# ---------------------------------------------------------------------------------------------
# evaluate and predict


@pytest.fixture(scope="module")
def pets(tmp_path_factory):
    """A model trained on an image folder of cat/dog, and its run folder."""
    root = tmp_path_factory.mktemp("pets")
    data = write_image_folder(root / "data", classes=("cat", "dog"), per_class=12)
    assert main(["train", "--data", str(data), "--epochs", "15", "--threads", "1", "--no-plots",
                 "--out", str(root / "run")]) == 0
    return root


def test_evaluate_maps_classes_by_name(pets, tmp_path, capsys):
    import shutil

    # the same images, but a test folder where "dog" sorts first and "cat" is named "zz-cat"
    same = tmp_path / "same"
    shutil.copytree(pets / "data", same)
    capsys.readouterr()
    assert main(["evaluate", str(pets / "run/model.npz"), "--data", str(same), "--all"]) == 0
    good = capsys.readouterr().out
    assert "all 24 images, --all" in good
    extra = tmp_path / "extra"
    shutil.copytree(pets / "data", extra)
    shutil.copytree(pets / "data" / "cat", extra / "tiger")
    assert main(["evaluate", str(pets / "run/model.npz"), "--data", str(extra), "--all"]) == 2
    one_line_error(capsys, "'tiger' unknown to the model")
    renamed = tmp_path / "renamed"
    shutil.copytree(pets / "data", renamed)
    (renamed / "cat").rename(renamed / "tiger")
    assert main(["evaluate", str(pets / "run/model.npz"), "--data", str(renamed), "--all"]) == 2
    one_line_error(capsys, "'tiger' unknown to the model", "'cat', 'dog'")


def test_evaluate_same_images_other_class_order_same_accuracy(pets, tmp_path, capsys):
    from cnnstep.data.formats import load_path

    ds = load_path(pets / "data", test_fraction=0.5)
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    pixels = np.round(x[..., 0] * 255).astype(np.uint8)
    write_npz(tmp_path / "a.npz", test=False, x_train=pixels, y_train=y,
              class_names=np.array(["cat", "dog"]))
    write_npz(tmp_path / "b.npz", test=False, x_train=pixels, y_train=1 - y,
              class_names=np.array(["dog", "cat"]))
    model = str(pets / "run/model.npz")
    capsys.readouterr()
    scores = []
    for name in ("a.npz", "b.npz"):
        assert main(["evaluate", model, "--data", str(tmp_path / name), "--all"]) == 0
        scores.append(capsys.readouterr().out.splitlines()[0].split("accuracy ")[1])
    assert scores[0] == scores[1]
    assert not scores[0].startswith("50.00%")  # index-to-index would give 100% minus it


def test_evaluate_by_name_not_by_index(pets, tmp_path, capsys):
    import shutil

    only_dog = tmp_path / "d"
    (only_dog / "dog").mkdir(parents=True)
    for f in sorted((pets / "data" / "dog").iterdir()):
        shutil.copy(f, only_dog / "dog" / f.name)
    (only_dog / "aaa").mkdir()  # an extra class folder sorted before "dog"
    shutil.copy(next((pets / "data" / "cat").iterdir()), only_dog / "aaa" / "x.png")
    capsys.readouterr()
    rc = main(["evaluate", str(pets / "run/model.npz"), "--data", str(only_dog), "--all"])
    assert rc == 2
    one_line_error(capsys, "'aaa' unknown to the model")


def test_evaluate_says_where_its_data_comes_from(pets, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(pets / "run/model.npz")]) == 0
    assert "recorded in" in capsys.readouterr().err


def test_predict_keeps_going_top_k_csv_json(pets, tmp_path, capsys):
    import csv
    import io
    import json

    from PIL import Image

    (tmp_path / "bad.png").write_bytes(b"not a png")
    Image.new("L", (1, 1)).save(tmp_path / "tiny.png")
    good = sorted((pets / "data" / "cat").iterdir())[0]
    model = str(pets / "run/model.npz")
    capsys.readouterr()
    assert main(["predict", model, str(tmp_path), str(good), "--top", "2"]) == 1
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 3 and "bad.png\terror: " in lines[0]
    assert lines[2].count("\t") == 4  # path, 2 x (class, probability)
    assert "tiny.png: the image is 1x1" in err and "1 of 3 images could not be read" in err
    assert main(["predict", model, str(tmp_path / "*.png"), "--format", "csv"]) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [Path(r["path"]).name for r in rows] == ["bad.png", "tiny.png"]
    assert main(["predict", model, str(good), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["top"][0]["class"] in ("cat", "dog")


def test_predict_reads_a_folder_in_one_call_with_each_images_own_answer(pets, monkeypatch,
                                                                        capsys):
    import json

    from cnnstep.data.images import load_image
    from cnnstep.nn import model as model_module

    model_path = pets / "run/model.npz"
    files = sorted((pets / "data" / "cat").iterdir()) + sorted((pets / "data" / "dog").iterdir())
    calls = []
    real = model_module.Sequential.predict_proba

    def counting(self, x, *args, **kwargs):
        calls.append(len(x))
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(model_module.Sequential, "predict_proba", counting)
    capsys.readouterr()
    assert main(["predict", str(model_path), *map(str, files), "--format", "json",
                 "--top", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert calls == [len(files)] and [r["path"] for r in rows] == list(map(str, files))
    model = model_module.load_model(model_path)
    h, w, c = model.input_shape
    for path, row in zip(files, rows):
        alone = real(model, load_image(path, size=(h, w), channels=c)[None])[0]
        names = model.class_names or []
        # Equal up to float32 rounding (a batch may run other kernels than one image), shown
        # rounded to 4 places.
        for entry in row["top"]:
            assert abs(entry["probability"] - alone[names.index(entry["class"])]) <= 1e-4


def test_max_memory_applies_to_model_files(pets, capsys):
    good = str(sorted((pets / "data" / "cat").iterdir())[0])
    capsys.readouterr()
    assert main(["predict", str(pets / "run/model.npz"), good, "--max-memory", "1K"]) == 2
    one_line_error(capsys, "more than the memory budget of 1.0 KiB")
    assert main(["predict", str(pets / "run/model.npz"), good, "--max-memory", "1G"]) == 0


def test_predict_warns_on_inverted_image(tmp_path, capsys):
    from PIL import Image

    assert main(["train", *FAST, "--out", str(tmp_path / "r")]) == 0
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "white.png")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "r/model.npz"), str(tmp_path / "white.png")]) == 0
    assert "far from the training images" in capsys.readouterr().err


def test_npz_data_label_out_of_range_names_place(tmp_path, capsys):
    y = np.arange(12) % 3
    y[4] = 200
    path = write_npz(tmp_path / "n.npz", y_train=y)
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, "label 200 at index 4")


def test_diverging_loss_suggests_a_sensible_rate(tmp_path, capsys):
    assert main(["train", *FAST, "--lr", "1e6", "--out", str(tmp_path / "r")]) == 2
    one_line_error(capsys, "--lr 0.005 (the default for this data)", "(it is 1e+06)")

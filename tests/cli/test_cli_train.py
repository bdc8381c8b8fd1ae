"""The train / evaluate / predict commands, end to end on scikit-learn's 8x8 digits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnstep.cli.main import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", "--data", "digits", "--epochs", "1", "--out", str(out)])
    assert rc == 0
    return out


def test_train_writes_model_metrics_and_plots(trained, capsys):
    for name in ("model.npz", "metrics.json", "checkpoint.npz", "curves.png",
                 "confusion_matrix.png", "filters.png", "feature_maps.png"):
        assert (trained / name).stat().st_size > 0, name
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.5
    assert metrics["seconds_per_epoch"] > 0
    assert [e["epoch"] for e in metrics["epochs"]] == [1]
    assert set(metrics["epochs"][0]) >= {"epoch", "loss", "train_accuracy", "val_accuracy",
                                         "val_loss", "seconds"}
    assert (trained / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_prints_accuracy_and_per_class_scores(trained, capsys):
    assert main(["evaluate", str(trained / "model.npz")]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "precision" in out and "recall" in out
    assert len([line for line in out.splitlines() if line[:1].isdigit()]) == 10


def test_predict_prints_path_class_probability(trained, tmp_path, capsys):
    from PIL import Image
    from sklearn.datasets import load_digits

    images = load_digits().images
    paths = []
    for k, (img, mode) in enumerate([(images[0], "L"), (images[1], "RGB")]):
        path = tmp_path / f"d{k}.png"
        pil = Image.fromarray((img * 255 / 16).astype(np.uint8))
        pil.convert(mode).resize((24, 24)).save(path)
        paths.append(str(path))
    assert main(["predict", str(trained / "model.npz"), *paths]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line, path in zip(lines, paths):
        p, label, prob = line.split("\t")
        assert p == path and label in [str(d) for d in range(10)] and 0 < float(prob) <= 1


@pytest.mark.parametrize("argv", [
    ["train", "--data", "no-such-data"],
    ["train", "--epochs", "0"],
    ["train", "--epochs", "abc"],
    ["train", "--time-limit", "0"],
    ["train", "--lr", "-1"],
    ["train", "--test-fraction", "1.5"],
    ["train", "--augment", "mirror"],
    ["train", "--augment", "shift=-1"],
    ["train", "--augment", "flip,flip"],
    ["train", "--augment", ""],
    ["train", "--data", "digits", "--image-size", "8", "8"],
    ["evaluate", "missing-model.npz"],
    ["predict", "missing-model.npz", "x.png"],
])
def test_user_errors_are_one_line_exit_2(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_resume_without_checkpoint_and_conflicting_options(trained, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert main(["train", "--out", str(trained), "--resume", "--arch", "signs"]) == 2
    assert main(["evaluate", str(trained / "model.npz"), "--data", "mnist5k"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "--arch signs differs" in err[1] and "28x28" in err[2]


def test_unwritable_output_folder_is_a_user_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["train", "--data", "digits", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_predict_unreadable_image(trained, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["predict", str(trained / "model.npz"), str(bad)]) == 1  # keeps going; 1 at end
    out, err = capsys.readouterr()
    assert "not a readable image" in out and "1 of 1 images could not be read" in err


def test_non_finite_loss_exit_2_names_epoch_and_remedy(tmp_path, capsys):
    rc = main(["train", "--data", "digits", "--epochs", "2", "--optimizer", "sgd", "--lr", "1e12",
               "--schedule", "constant", "--no-plots", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "epoch 1" in err and "--lr" in err


def test_ctrl_c_saves_checkpoint_and_resume_lists_each_epoch_once(tmp_path):
    """A real SIGINT to a real `cnnstep train` process, then `--resume`."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "cnnstep", "train", "--data", "digits", "--epochs", "400",
           "--no-plots", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    deadline = time.monotonic() + 60
    proc.stdout.readline()  # the header
    done_epochs = 0
    while done_epochs < 2 and time.monotonic() < deadline:
        done_epochs += proc.stdout.readline().startswith("epoch")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "checkpoint saved" in err and "--resume" in err
    assert (out / "checkpoint.npz").is_file() and not (out / "model.npz").exists()

    # resume, but stop at 4 epochs this time
    done = subprocess.run(cmd[:7] + ["4", "--no-plots", "--out", str(out), "--resume"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    epochs = [e["epoch"] for e in metrics["epochs"]]
    # each epoch once; 4 unless Ctrl-C arrived after epoch 4 already
    assert epochs == list(range(1, max(4, len(epochs)) + 1))
    assert "resuming" in done.stdout


@pytest.mark.parametrize("on", [True, False])
def test_first_line_says_whether_onednn_kernels_are_on(on, tmp_path, capsys):
    from cnnstep.backends import onednn

    if on and not onednn.available():
        pytest.skip(f"needs the onednn extra: {onednn.describe()}")
    before = onednn.enabled()
    onednn.set_enabled(on)
    try:
        assert main(["train", "--data", "digits", "--epochs", "1", "--no-plots", "--threads",
                     "1", "--out", str(tmp_path / "r")]) == 0
    finally:
        onednn.set_enabled(before)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("training default on digits")
    assert first.endswith(", oneDNN kernels") == on, first


def _weights(folder: Path) -> list[np.ndarray]:
    from cnnstep import load_model

    return load_model(folder / "model.npz").parameters()


def test_resume_with_augmentation_continues_the_same_run(tmp_path, capsys):
    """Shifts and flips are settings of the run: stored in its checkpoint, said on the first
    line, drawn from the seed, so that 2 epochs and then 1 more on --resume give the 3-epoch
    run's weights; another --augment on resume is refused in one line."""
    run = ["train", "--data", "digits", "--schedule", "constant", "--augment", "shift=1,flip",
           "--threads", "1", "--no-plots", "--seed", "3"]
    assert main([*run, "--epochs", "3", "--out", str(tmp_path / "straight")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "augment: shifts of up to 1 px and left-right flips, seed 3" in first
    assert "augment" not in first.split(";")[1]  # given, not chosen
    assert main([*run, "--epochs", "2", "--out", str(tmp_path / "split")]) == 0
    capsys.readouterr()
    resume = ["train", "--out", str(tmp_path / "split"), "--resume", "--epochs", "3"]
    assert main([*resume, "--augment", "flip"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and \
        "--augment flip differs from the checkpoint's shift=1,flip" in err
    assert main(resume) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("resuming") and "shifts of up to 1 px and left-right flips" in out[0]
    for a, b in zip(_weights(tmp_path / "straight"), _weights(tmp_path / "split")):
        assert np.array_equal(a, b)
    losses = [[e["loss"] for e in json.loads((tmp_path / name / "metrics.json").read_text())
               ["epochs"]] for name in ("straight", "split")]
    assert losses[0] == losses[1] and len(losses[0]) == 3


def test_augment_none_turns_the_recipe_s_choice_off(tmp_path, capsys):
    assert main(["train", "--data", "digits", "--epochs", "1", "--augment", "none",
                 "--threads", "1", "--no-plots", "--out", str(tmp_path / "r")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "augment: none," in first and "augment chosen" not in first

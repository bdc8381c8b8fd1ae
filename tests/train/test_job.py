"""What ``cnnstep train`` does as a library (``cnnstep.train.job``): one job per output folder
(a lock a killed job does not leave stuck), the choices made from the data, the settings a
resumed run may change, the checkpoint's settings schema, the first and last lines."""

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
from cnnstep.errors import UserError
from cnnstep.train.job import recipe as recipe_module
from cnnstep.train.job import settings as js
from cnnstep.train.job.folder import claim_folder, try_lock
from cnnstep.train.job.recipe import DataShape, Recipe, choose
from cnnstep.train.job.run import baseline_line, majority

SRC = str(Path(__file__).resolve().parents[2] / "src")
FAST = ["--data", "digits", "--epochs", "1", "--no-plots", "--threads", "1"]


def _holder(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock until it is killed."""
    code = ("import sys, time; from pathlib import Path; "
            "from cnnstep.train.job.folder import try_lock; "
            "lock = try_lock(Path(sys.argv[1])); print('held' if lock else 'busy', flush=True); "
            "time.sleep(600)")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_a_second_job_into_a_folder_in_use_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    holder = _holder(out)
    try:
        assert main(["train", *FAST, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "another cnnstep train is writing there" in err
        assert main(["train", *FAST, "--out", str(out), "--overwrite"]) == 2
        assert not (out / "model.npz").exists()
    finally:
        _kill(holder)
    # the killed holder left its lock file, not its lock
    lock = try_lock(out)
    assert lock is not None
    lock.release()
    assert main(["train", *FAST, "--out", str(out)]) == 0


def test_a_second_job_into_the_default_folder_takes_the_next_number(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.chdir(tmp_path)
    holder = _holder(tmp_path / "runs" / "default-digits")
    try:
        assert main(["train", *FAST]) == 0
    finally:
        _kill(holder)
    assert (tmp_path / "runs/default-digits-2/model.npz").is_file()
    assert not (tmp_path / "runs/default-digits/model.npz").exists()


def test_claim_folder_in_process(tmp_path):
    first = claim_folder(str(tmp_path / "a"), tmp_path / "d", resume=False, overwrite=False)
    with pytest.raises(UserError, match="another cnnstep train"):
        claim_folder(str(tmp_path / "a"), tmp_path / "d", resume=False, overwrite=False)
    default = claim_folder(None, tmp_path / "a", resume=False, overwrite=False)
    assert default.folder == tmp_path / "a-2"
    first.release()
    default.release()
    again = claim_folder(str(tmp_path / "a"), tmp_path / "d", resume=False, overwrite=False)
    again.release()
    with pytest.raises(UserError, match="contradict"):
        claim_folder(None, tmp_path / "a", resume=True, overwrite=True)


def test_recipes_choose_from_the_image_size():
    small, _, _ = choose(dict(js.DEFAULTS), DataShape(28, 28, 1, 4000, 10))
    assert (small["arch"], small["lr"], small["batch_size"], small["augment"]) == \
        ("default", 5e-3, 64, {"shift": 2, "flip": False})
    big, chosen, recipe = choose(dict(js.DEFAULTS), DataShape(64, 64, 3, 1080, 6))
    assert chosen == ["arch", "lr", "batch_size", "augment"] and recipe.name == "larger images"
    assert (big["arch"], big["lr"], big["batch_size"], big["augment"]) == \
        ("conv4", 1e-3, 32, {"shift": 4, "flip": False})
    # a few hundred colour photos are mirrored too; grey images (digits, letters) never
    few, _, recipe = choose(dict(js.DEFAULTS), DataShape(64, 64, 3, 209, 2))
    assert recipe.name == "few larger colour images"
    assert (few["arch"], few["augment"]) == ("conv4", {"shift": 4, "flip": True})
    grey, _, recipe = choose(dict(js.DEFAULTS), DataShape(64, 64, 1, 209, 2))
    assert recipe.name == "larger images" and grey["augment"] == {"shift": 4, "flip": False}
    given, chosen, _ = choose({**js.DEFAULTS, "augment": {"shift": 0, "flip": False}},
                              DataShape(64, 64, 3, 1080, 6))
    assert given["augment"] == {"shift": 0, "flip": False} and "augment" not in chosen
    from cnnstep.nn.architectures import build_architecture

    model = build_architecture("conv4", (64, 64, 3), 6)
    assert model.output_shape == (6,) and model.count_params() == 66_662
    given, chosen, _ = choose({**js.DEFAULTS, "arch": "signs", "lr": 0.1},
                              DataShape(64, 64, 3, 1080, 6))
    assert (given["arch"], given["lr"]) == ("signs", 0.1) and "arch" not in chosen


def test_a_new_kind_of_data_is_one_recipe(monkeypatch):
    mine = Recipe("tiny sets", lambda d: d.n_train < 100, arch="signs", lr=0.01, batch_size=8,
                  shift=lambda d: 0)
    monkeypatch.setattr(recipe_module, "RECIPES", [mine, *recipe_module.RECIPES])
    out, _, used = choose(dict(js.DEFAULTS), DataShape(64, 64, 3, 50, 2))
    assert used is mine and (out["arch"], out["batch_size"]) == ("signs", 8)


@pytest.mark.parametrize("text, setting, shown", [
    ("none", {"shift": 0, "flip": False}, "none"),
    ("0", {"shift": 0, "flip": False}, "none"),
    ("3", {"shift": 3, "flip": False}, "3"),
    ("shift=3", {"shift": 3, "flip": False}, "3"),
    ("flip", {"shift": 0, "flip": True}, "flip"),
    ("shift=4,flip", {"shift": 4, "flip": True}, "shift=4,flip"),
    (" Flip , shift=2 ", {"shift": 2, "flip": True}, "shift=2,flip"),
    (5, {"shift": 5, "flip": False}, "5"),
    ({"shift": 1, "flip": True}, {"shift": 1, "flip": True}, "shift=1,flip"),
])
def test_the_augment_setting_is_read_and_written_back(text, setting, shown):
    assert js.parse_augment(text) == setting
    assert js.format_augment(setting) == shown and js.parse_augment(shown) == setting


@pytest.mark.parametrize("bad", ["", "x", "shift=", "shift=-1", "shift=a", "flip,flip",
                                 "none,flip", "1,flip", "shift=1234567", "mirror", -1, True,
                                 1.5, None, {"shift": 1}, {"shift": 1, "flip": 1},
                                 {"shift": -1, "flip": False}])
def test_a_bad_augment_setting_names_what_was_expected(bad):
    with pytest.raises(ValueError, match="augment"):
        js.parse_augment(bad)


def test_the_first_line_says_the_augmentation():
    assert js.describe_augment({"shift": 0, "flip": False}) == "none"
    assert js.describe_augment({"shift": 4, "flip": True}) == \
        "shifts of up to 4 px and left-right flips"
    assert js.describe_augment({"shift": 0, "flip": True}) == "left-right flips"


def test_resume_may_change_only_some_settings():
    stored = js.resolve_run_settings({**js.DEFAULTS, "arch": "default", "lr": 0.005,
                                      "batch_size": 64, "augment": {"shift": 2, "flip": False}})
    assert js.merge({"epochs": "auto", "threads": 1}, stored)["threads"] == 1
    with pytest.raises(UserError, match="--batch-size 32 differs"):
        js.merge({"batch_size": 32}, stored)
    # the same augmentation, however written, resumes; another one is refused
    assert js.merge({"augment": "shift=2"}, stored)["augment"] == stored["augment"]
    with pytest.raises(UserError, match="--augment shift=2,flip differs from the checkpoint's 2;"):
        js.merge({"augment": "shift=2,flip"}, stored)
    with pytest.raises(UserError, match="keeps its kind of stop"):
        js.merge({"epochs": 5}, stored)


def test_stored_settings_schema(monkeypatch):
    good = js.resolve_run_settings({**js.DEFAULTS, "arch": "default", "lr": 0.005,
                                    "batch_size": 64, "augment": {"shift": 2, "flip": True}})
    good["patience"] = 12  # what the job stores once the data is known
    notes: list[str] = []
    assert js.check_stored(good, notes)["arch"] == "default" and notes == []
    assert js.check_stored(good, [])["augment"] == {"shift": 2, "flip": True}
    # a checkpoint written before flips existed stored the shift alone
    assert js.check_stored({**good, "augment": 2}, [])["augment"] == {"shift": 2, "flip": False}
    for key, value, fragment in [("arch", "nope", "settings.arch"), ("epochs", "x", "epochs"),
                                 ("batch_size", 0, "batch_size"), ("lr", -1, "lr"),
                                 ("seed", -3, "seed"), ("image_size", [1], "image_size"),
                                 ("test_fraction", 2, "test_fraction"),
                                 ("data", 5, "settings.data"), ("patience", "x", "patience"),
                                 ("augment", "mirror", "settings.augment"),
                                 ("augment", {"shift": 1, "flip": "yes"}, "settings.augment")]:
        with pytest.raises(ValueError, match=fragment):
            js.check_stored({**good, key: value}, [])
    with pytest.raises(ValueError, match="lack"):
        js.check_stored({"arch": "default"}, [])
    monkeypatch.setattr(js, "machine_cpus", lambda: 2)
    assert js.check_stored({**good, "threads": 24}, notes)["threads"] == 2
    assert notes == ["the checkpoint's 24 threads capped at this machine's 2 CPUs"]


def test_the_last_line_compares_with_the_majority_class():
    name, base = majority(np.array([1, 1, 0]), ["non-cat", "cat"])
    assert (name, base) == ("cat", pytest.approx(2 / 3))
    assert baseline_line(0.9, name, base).startswith("test accuracy 90.00% is above the 66.67%")
    warning = baseline_line(0.46, name, base)
    assert warning.startswith("warning: test accuracy 46.00% is not above the 66.67% of always "
                              "answering 'cat'")


def _h5(path: Path, part: str, x: np.ndarray, y: np.ndarray) -> None:
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        f[f"{part}_set_x"] = x
        f[f"{part}_set_y"] = y.reshape(1, -1)
        f["list_classes"] = np.array([b"non-cat", b"cat"])


def test_no_option_runs_auto_and_says_what_it_chose(tmp_path, capsys):
    """Course-shaped files and no option but the two files (and a short time limit): the first
    line says what was chosen and the bounds; the last warns when the model is no better than
    answering the majority class (random labels here: there is nothing to learn)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 64, 64, 3), dtype=np.uint8)
    _h5(tmp_path / "train.h5", "train", x, (rng.random(40) < 0.35).astype(np.int64))
    _h5(tmp_path / "test.h5", "test", x[:12], np.array([1] * 8 + [0] * 4))
    argv = ["train", "--data", str(tmp_path / "train.h5"), "--test-data",
            str(tmp_path / "test.h5"), "--time-limit", "0.0001", "--threads", "1", "--no-plots",
            "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    first, last = lines[0], lines[-1]
    # 34 training images are 2 batches: the patience is 300 steps (150 epochs), not 12
    assert "chosen for" in first and "epochs auto: until 150 epochs bring no better accuracy" \
        in first and "at most 150 epochs or 0.0001 min" in first
    assert "6 validation images held out of the training part" in first
    assert "augment: shifts of up to 4 px and left-right flips" in first
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["majority_class"] == "cat" and metrics["majority_accuracy"] == 8 / 12
    assert "time limit" in metrics["stopped"] and len(metrics["epochs"]) == 1
    if metrics["test_accuracy"] <= 8 / 12:
        assert last.startswith("warning: test accuracy") and "'cat'" in last
    else:
        assert "is above the 66.67%" in last
    # resuming a run that has ended is refused in one line
    assert main(["train", "--out", str(tmp_path / "run"), "--resume"]) == 2
    assert "the run ended after epoch 1" in capsys.readouterr().err


def test_a_tampered_checkpoint_on_resume_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r"
    assert main(["train", *FAST[:3], "2", *FAST[4:], "--out", str(out)]) == 0
    path = out / "checkpoint.npz"
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(str(arrays["__checkpoint__"][()]))

    def write(h):
        arrays["__checkpoint__"] = np.array(json.dumps(h))
        np.savez(path, **arrays)

    for edit, fragment in [(("settings", "arch", "nope"), "settings.arch"),
                           (("settings", "batch_size", 0), "settings.batch_size"),
                           (("config", "batch_size", 0), "batch_size"),
                           (("progress", "history", "x"), "history")]:
        h = json.loads(json.dumps(header))
        h[edit[0]][edit[1]] = edit[2]
        write(h)
        capsys.readouterr()
        assert main(["train", "--out", str(out), "--resume", "--epochs", "3"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert "damaged checkpoint" in err and fragment in err, err
    # thread counts read from the checkpoint are capped at the machine's CPUs
    from cnnstep.train import checkpoint

    monkeypatch.setattr(js, "machine_cpus", lambda: 1)
    monkeypatch.setattr(checkpoint, "machine_cpus", lambda: 1)
    h = json.loads(json.dumps(header))
    h["settings"]["threads"] = h["config"]["threads"] = 24
    write(h)
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--epochs", "3"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.count("capped") == 1
    assert "1 thread (the checkpoint's 24 threads capped at this machine's 1 CPUs)" in first


def test_interrupted_job_message(tmp_path):
    """A real SIGINT to a job started with no option but the data: the checkpoint holds the
    auto run's state, and --resume continues it."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "cnnstep", "train", "--data", "digits", "--threads", "1",
           "--no-plots", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    assert "epochs auto" in proc.stdout.readline()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not proc.stdout.readline().startswith("epoch"):
        pass
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in err and len(err.strip().splitlines()) == 1
    done = subprocess.run([*cmd, "--resume", "--time-limit", "0.0001"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("resuming default on digits")

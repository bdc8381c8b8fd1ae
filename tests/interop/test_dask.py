"""Dask: predictions on chunked arrays and a grid search on a real 2-process LocalCluster."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="needs dask (the dask extra)")
distributed = pytest.importorskip("distributed", reason="needs distributed (the dask extra)")

from cnnstep.interop import dask as cdask  # noqa: E402
from cnnstep.nn.architectures import build_architecture  # noqa: E402
from cnnstep.ops import get_num_threads, set_num_threads  # noqa: E402


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
    # 1,024 images, 4 chunks spread over 2 workers: chunks big enough for BLAS to use its
    # threads where it may
    x = np.concatenate([mnist_images] * 32)
    X = da.from_array(x, chunks=(256, 28, 28, 1))
    proba = cdask.predict_proba(model, X)
    assert isinstance(proba, da.Array) and proba.shape == (1024, 10)
    assert proba.chunks == ((256,) * 4, (10,))
    # the same graph in this process, where ops may use 2 threads and BLAS its own count (a
    # product's last bits depend on both): each chunk still runs on one, as on the workers
    before = get_num_threads()
    set_num_threads(2)
    try:
        local = proba.compute(scheduler="sync")
    finally:
        set_num_threads(before)
    np.testing.assert_array_equal(client.compute(proba).result(), local)
    np.testing.assert_array_equal(client.compute(cdask.predict(model, X)).result(),
                                  local.argmax(axis=1))
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

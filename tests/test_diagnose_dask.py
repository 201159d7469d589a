"""bias_variance and validation_curve on a real Dask cluster give the local numbers."""

import distributed  # noqa: F401  (in the test extra: a missing install fails)
import numpy as np
import pytest
from joblib import parallel_backend

import nnopt_fast as nf

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def client():
    # Scheduler and two single-threaded worker processes on this machine, no dashboard.
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       silence_logs=50)
    client = distributed.Client(cluster)
    client.wait_for_workers(2)
    # Start importing the package on each worker now, while the tests compute locally.
    warm = [client.submit(exec, "import nnopt_fast", pure=False, workers=[w],
                          allow_other_workers=False)
            for w in client.scheduler_info()["workers"]]
    yield client
    del warm
    client.close()
    cluster.close()


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _data(rng, n):
    X = rng.normal(size=(n, 4))
    return X, np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)


def test_bias_variance_on_dask_equals_local(client, rng):
    X, y = _data(rng, 60)
    X_test, y_test = _data(rng, 30)
    est = nf.MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=40)
    local = nf.bias_variance(est, X, y, X_test, y_test, n_rounds=6, random_state=4, n_jobs=1,
                             return_predictions=True)
    with distributed.get_task_stream(client) as stream, parallel_backend("dask"):
        remote = nf.bias_variance(est, X, y, X_test, y_test, n_rounds=6, random_state=4,
                                  return_predictions=True)
    np.testing.assert_array_equal(remote.predictions, local.predictions)
    assert (remote.expected_loss, remote.bias_squared, remote.variance) == (
        local.expected_loss, local.bias_squared, local.variance)
    # The rounds really ran as tasks on the cluster's worker processes.
    workers = set(client.scheduler_info()["workers"])
    assert len(workers) == 2
    assert stream.data and {t["worker"] for t in stream.data} <= workers


def test_validation_curve_on_dask_equals_local(client, rng):
    X, y = _data(rng, 60)
    labels = np.where(y > 0, "pos", "neg")
    est = nf.MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, learning_rate_init=0.02,
                           random_state=0)
    kw = dict(param_name="alpha", param_range=[1e-4, 1.0], cv=3, random_state=2)
    local = nf.validation_curve(est, X, labels, n_jobs=1, **kw)
    with parallel_backend("dask"):
        remote = nf.validation_curve(est, X, labels, **kw)
    for name in ("train_scores", "validation_scores", "train_losses", "validation_losses"):
        np.testing.assert_array_equal(getattr(remote, name), getattr(local, name))


def test_two_hundred_grouped_rounds_on_dask_equal_the_local_ones(client, rng):
    # nnopt_fast's MLP trains its rounds as groups: under Dask, each group is one task.
    X, y = _data(rng, 40)
    X_test, y_test = _data(rng, 20)
    est = nf.MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", max_iter=2, batch_size=20,
                          learning_rate_init=0.01, random_state=0)
    kw = dict(n_rounds=200, random_state=9, return_predictions=True)
    local = nf.bias_variance(est, X, y, X_test, y_test, n_jobs=1, **kw)
    with distributed.get_task_stream(client) as stream, parallel_backend("dask"):
        remote = nf.bias_variance(est, X, y, X_test, y_test, **kw)
    np.testing.assert_array_equal(remote.predictions, local.predictions)
    assert (remote.expected_loss, remote.bias_squared, remote.variance, remote.intervals) == (
        local.expected_loss, local.bias_squared, local.variance, local.intervals)
    workers = set(client.scheduler_info()["workers"])
    ran = [t for t in stream.data if "_fit_predict_group" in t["key"]]
    # A few tasks of many rounds each, on the cluster's worker processes.
    assert 1 < len(ran) < 20 and {t["worker"] for t in ran} <= workers

"""The owner of the thread settings: cores, n_threads conventions, the shared BLAS count."""

import inspect
import os
import sys
import types
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import nnopt_fast as nf
from nnopt_fast.kernels import get_backend
from nnopt_fast.train import threads
from nnopt_fast.train.state import TrainConfig
from nnopt_fast.train.threads import (
    available_cores,
    default_estimator_threads,
    limit_thread_pools,
    resolve_n_threads,
    thread_budget,
)

needs_2_cores = pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores")


def _counts(user_api):
    return sorted(p["num_threads"] for p in threadpool_info() if p["user_api"] == user_api)


def _clamp_message(n, cores):
    return (rf"n_threads={n} asks for more threads than this process has cores "
            rf"\({cores} available\)")


def _task(rng, n=200, d=12, k=3):
    X = rng.standard_normal((n, d))
    y = np.argmax(X @ rng.standard_normal((d, k)), axis=1).astype(np.int64)
    return X, y


# --------------------------------------------------------------------------- cores
def test_available_cores_is_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "process_cpu_count", lambda: 3, raising=False)
    assert available_cores() == 3
    monkeypatch.delattr(os, "process_cpu_count", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert available_cores() == 1

    def no_affinity(pid):
        raise OSError("not supported here")

    monkeypatch.setattr(os, "sched_getaffinity", no_affinity)
    assert available_cores() == 64
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert available_cores() == 1


def test_estimator_default_counts_the_available_cores(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_estimator_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    assert default_estimator_threads() == 1
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    assert default_estimator_threads() == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert default_estimator_threads() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert default_estimator_threads() == 4


# --------------------------------------------------------------------------- n_threads
def test_none_and_minus_one_mean_every_available_core():
    cores = available_cores()
    assert resolve_n_threads(None) == cores
    assert resolve_n_threads(-1) == cores
    assert resolve_n_threads(1) == 1


@pytest.mark.parametrize("bad", [0, -2, -8])
def test_zero_and_other_negatives_are_rejected(bad):
    with pytest.raises(ValueError, match=r"n_threads must be a positive integer, or -1 or "
                                         rf"None .* got {bad}"):
        resolve_n_threads(bad)


@pytest.mark.parametrize("bad", [1.5, "2", True])
def test_n_threads_of_another_type_is_rejected(bad):
    with pytest.raises(TypeError, match="n_threads must be an integer"):
        resolve_n_threads(bad)


def test_more_threads_than_cores_clamps_with_a_warning_naming_both(rng):
    cores = available_cores()
    with pytest.warns(UserWarning, match=_clamp_message(cores + 5, cores)) as record:
        assert resolve_n_threads(cores + 5) == cores
    assert str(record[0].message).endswith(f"using {cores}")
    X, y = _task(rng, n=40)
    runs = []
    for n_threads in (cores + 1, cores):
        net = nf.MLP((12, 4, 3), random_state=0, dtype=np.float64)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            nf.train(net, X, y, epochs=2, n_threads=n_threads, thread_mode="data",
                     random_state=0)
        runs.append((net.params.copy(), [str(w.message) for w in seen]))
    assert len(runs[0][1]) == 1 and f"n_threads={cores + 1}" in runs[0][1][0]
    assert runs[1][1] == []
    # The clamped run is the run on every core.
    np.testing.assert_array_equal(runs[0][0], runs[1][0])


def test_train_minus_one_is_the_run_on_every_core(rng):
    X, y = _task(rng)
    out = []
    for n_threads in (-1, available_cores()):
        net = nf.MLP((12, 16, 3), random_state=0, dtype=np.float64)
        nf.train(net, X, y, epochs=2, batch_size=32, n_threads=n_threads, thread_mode="data",
                 backend="cython", random_state=3)
        out.append(net.params.copy())
    np.testing.assert_array_equal(out[0], out[1])


@needs_2_cores
def test_train_default_is_every_available_core(rng):
    assert inspect.signature(nf.train).parameters["n_threads"].default is None
    X, y = _task(rng)
    seen = []
    nf.train(nf.MLP((12, 16, 3)), X, y, epochs=1, backend="cython", thread_mode="blas",
             callbacks=[lambda net, hist: seen.append(_counts("blas"))])
    # thread_mode="blas": the default n_threads is what BLAS gets.
    assert seen and set(seen[0]) == {available_cores()}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_saved_model_with_more_threads_than_cores_trains_on(tmp_path, rng):
    cores = available_cores()
    big = max(16, cores + 1)
    X, y = _task(rng)
    with pytest.warns(UserWarning, match=_clamp_message(big, cores)):
        clf = nf.MLPClassifier((8,), max_iter=2, n_threads=big, random_state=0).fit(X, y)
    clf.save(tmp_path / "model.nnf")
    loaded = nf.load(tmp_path / "model.nnf")
    assert loaded.n_threads == big
    with pytest.warns(UserWarning, match=_clamp_message(big, cores)):
        loaded.partial_fit(X, y)
    ref = nf.load(tmp_path / "model.nnf").set_params(n_threads=cores)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        ref.partial_fit(X, y)
    assert loaded.n_iter_ == 1
    for a, b in zip(loaded.coefs_, ref.coefs_):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- shared BLAS count
@needs_2_cores
def test_blas_count_is_shared_and_restored_in_any_order():
    be = get_backend("cython")
    blas_run = TrainConfig(layer_sizes=(64, 32, 10), batch_size=32, n_threads=2,
                           thread_mode="blas")
    with threadpool_limits(limits=1, user_api="blas"):  # the process's own setting
        first, second = thread_budget(blas_run, be), thread_budget(blas_run, be)
        first.__enter__()
        assert set(_counts("blas")) == {2}  # alone: what the run asked for
        second.__enter__()
        assert set(_counts("blas")) == {1}  # two runs: one BLAS thread per call
        first.__exit__(None, None, None)  # the first one out is not the last one in
        assert set(_counts("blas")) == {2}
        second.__exit__(None, None, None)
        assert set(_counts("blas")) == {1}  # as it was before the first run


@needs_2_cores
def test_limit_thread_pools_holds_blas_and_openmp_then_restores():
    get_backend("cython")  # its OpenMP runtime is loaded
    blas_before, omp_before = _counts("blas"), _counts("openmp")
    with limit_thread_pools(1) as n:
        assert n == 1
        assert set(_counts("blas")) == {1}
        assert set(_counts("openmp")) == ({1} if omp_before else set())
    assert _counts("blas") == blas_before and _counts("openmp") == omp_before
    # At every core it is not a limit: nothing changes.
    with limit_thread_pools(None) as n:
        assert n == available_cores()
        assert _counts("blas") == blas_before and _counts("openmp") == omp_before


@needs_2_cores
def test_inference_holds_blas_to_one_thread_on_large_calls_only(rng):
    from nnopt_fast.kernels.inference import THREADED_BLAS_WORK, Network

    coefs = [rng.standard_normal((64, 100)), rng.standard_normal((100, 10))]
    intercepts = [rng.standard_normal(100), rng.standard_normal(10)]
    net = Network(coefs, intercepts, "tanh", "softmax", backend="cython")
    compiled, seen = net._net, []

    class Recording:
        def run(self, X, out, apply_output, n_threads=1):
            seen.append(set(_counts("blas")))
            return compiled.run(X, out, apply_output, n_threads)

    net._net = Recording()
    big = rng.standard_normal((THREADED_BLAS_WORK // 6400 + 1, 64))
    with threadpool_limits(limits=2, user_api="blas"):
        P = net(big)
        assert set(_counts("blas")) == {2}  # set back
        net(big[:1])
    assert seen == [{1}, {2}]  # one thread for the large call; the one row untouched
    Z = np.tanh(big @ coefs[0] + intercepts[0]) @ coefs[1] + intercepts[1]
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(P, E / E.sum(axis=1, keepdims=True), rtol=1e-10, atol=1e-12)


def test_the_library_scan_is_cached(monkeypatch):
    scans = []
    real = threads.threadpoolctl.ThreadpoolController

    def counting():
        scans.append(1)
        return real()

    be = get_backend("cython")
    threads._pools()
    monkeypatch.setattr(threads.threadpoolctl, "ThreadpoolController", counting)
    cfg = TrainConfig(layer_sizes=(4, 3, 2), batch_size=4, n_threads=1)
    for _ in range(20):
        with thread_budget(cfg, be):
            pass
    assert scans == []
    # An import may load a new native library: the next run scans again, once.
    monkeypatch.setitem(sys.modules, "nnopt_fast_test_new_module", types.ModuleType("m"))
    for _ in range(3):
        with thread_budget(cfg, be):
            pass
    assert scans == [1]

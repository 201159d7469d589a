"""Multithreaded training: sync determinism and equality, Hogwild learning, the thread budget."""

import os
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import nnopt_fast as nf
from nnopt_fast.kernels import get_backend
from nnopt_fast.kernels.epoch import check_epoch
from nnopt_fast.kernels.team import new_stop_flag
from nnopt_fast.train import loop
from nnopt_fast.train.state import TrainState
from nnopt_fast.train.threads import WORK_THRESHOLDS, available_cores, choose_mode, thread_budget

BACKENDS = ("cython", "numba")
needs_2_cores = pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores")


def _blas_threads():
    return sorted(m["num_threads"] for m in threadpool_info() if m["user_api"] == "blas")


def _task(rng, n=600, d=12, k=3, dtype=np.float64):
    X = rng.standard_normal((n, d)).astype(dtype)
    y = np.argmax(X @ rng.standard_normal((d, k)), axis=1).astype(np.int64)
    return X, y


def _train(backend, X, y, n_threads, parallel="sync", epochs=3, **kw):
    # thread_mode="data": these small steps would otherwise get threaded BLAS ("auto").
    net = nf.MLP((X.shape[1], 16, 8, 3), random_state=0, dtype=X.dtype)
    opts = dict(batch_size=33, lr=0.1, l2=1e-2, dropout=0.2, random_state=7,
                thread_mode="data")
    opts.update(kw)
    nf.train(net, X, y, epochs=epochs, backend=backend, n_threads=n_threads,
             parallel=parallel, **opts)
    return net.params.copy()


def _rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@needs_2_cores
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_sync_two_threads_equals_serial_and_repeats_bitwise(rng, backend, optimizer):
    X, y = _task(rng)
    sw = rng.random(len(X)) + 0.5
    serial = _train(backend, X, y, 1, optimizer=optimizer, sample_weight=sw)
    two = _train(backend, X, y, 2, optimizer=optimizer, sample_weight=sw)
    again = _train(backend, X, y, 2, optimizer=optimizer, sample_weight=sw)
    # Only summation orders differ (the slices' rows meet in one weight-gradient GEMM).
    assert _rel(two, serial) <= 1e-12
    np.testing.assert_array_equal(two, again)


@needs_2_cores
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("l1_method", ["subgradient", "proximal"])
def test_sync_two_threads_equals_serial_with_l1(rng, backend, l1_method):
    X, y = _task(rng)
    kw = dict(l1=1e-2, l1_method=l1_method, optimizer="momentum")
    serial = _train(backend, X, y, 1, **kw)
    two = _train(backend, X, y, 2, **kw)
    assert _rel(two, serial) <= 1e-12


@needs_2_cores
@pytest.mark.parametrize("backend", BACKENDS)
def test_sync_uneven_last_batch_and_tiny_batches(rng, backend):
    # 37 rows in batches of 3 -> a last batch of 1 row, so one slice is empty.
    X, y = _task(rng, n=37)
    serial = _train(backend, X, y, 1, batch_size=3)
    two = _train(backend, X, y, 2, batch_size=3)
    assert _rel(two, serial) <= 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_thread_is_the_serial_loop(rng, backend):
    X, y = _task(rng)
    params = _train(backend, X, y, 1)
    net = nf.MLP((X.shape[1], 16, 8, 3), random_state=0, dtype=X.dtype)
    be = get_backend(backend)
    # nf.train's draws: the dropout seed, then one permutation per epoch.
    g = np.random.default_rng(7)
    seed = int(g.integers(0, 2**63 - 1))
    cfg = loop.make_config(net, batch_size=33, n_samples=len(X), l2=1e-2, dropout=0.2,
                           seed=seed)
    state = TrainState(net, cfg)
    for _ in range(3):
        perm = g.permutation(len(X)).astype(np.int64)
        _, _, n_steps, status = be.run_epoch(cfg, state, X, y, None, perm, 0.1, state.step)
        assert status == 0
        state.step += n_steps
        state.t += n_steps
    np.testing.assert_array_equal(params, net.params)


@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_epoch_with_one_slice_matches_serial_bitwise(rng, backend):
    # The threaded code path itself, run with T = 1 (momentum: no fused-GEMM SGD step).
    X, y = _task(rng)
    be = get_backend(backend)
    out = []
    for parallel_path in (False, True):
        net = nf.MLP((X.shape[1], 16, 8, 3), random_state=0, dtype=X.dtype)
        cfg = loop.make_config(net, batch_size=33, n_samples=len(X), optimizer="momentum",
                               dropout=0.2, seed=3)
        state = TrainState(net, cfg)
        perm = np.random.default_rng(1).permutation(len(X)).astype(np.int64)
        # The row-major layout the sync threads run (a narrow net like this one
        # trains serially in the small-matrix kernels' layout otherwise).
        plan, data, perm = check_epoch(cfg, state, X, y, None, perm, layout="rows")
        epoch = be.parallel_epoch if parallel_path else be.serial_epoch
        r = epoch(cfg, plan, state, data, perm, 0.1, 0, new_stop_flag())
        out.append((r, net.params.copy()))
    assert out[0][0][2:] == out[1][0][2:]
    np.testing.assert_array_equal(out[0][1], out[1][1])


@needs_2_cores
@pytest.mark.parametrize("backend", BACKENDS)
def test_sync_divergence_restores_and_raises(rng, backend):
    X, y = _task(rng)
    net = nf.MLP((X.shape[1], 16, 8, 3), activation="relu", random_state=0, dtype=X.dtype)
    before = net.params.copy()
    with pytest.raises(nf.DivergenceError):
        nf.train(net, X * 1e100, y, epochs=1, lr=1e200, backend=backend, n_threads=2,
                 thread_mode="data")
    np.testing.assert_array_equal(net.params, before)


def _accuracy(net, X, y):
    return float(np.mean(net.predict(X) == y))


@needs_2_cores
@pytest.mark.parametrize("backend", BACKENDS)
def test_hogwild_learns_digits_like_serial(backend):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, ytr, Xte, yte = X[:1400], y[:1400].astype(np.int64), X[1400:], y[1400:]
    acc = {}
    for n, par in ((1, "sync"), (2, "hogwild")):
        net = nf.MLP((64, 64, 10), random_state=0, dtype=np.float64)
        nf.train(net, Xtr, ytr, epochs=20, batch_size=32, lr=0.1, backend=backend,
                 n_threads=n, parallel=par, random_state=0, thread_mode="data")
        acc[par] = _accuracy(net, Xte, yte)
    assert acc["sync"] > 0.9
    assert acc["hogwild"] >= acc["sync"] - 0.01


@needs_2_cores
def test_hogwild_learns_w1_like_serial():
    # The W1 task of BENCH.md (64-32-10, batch 32, lr 0.05, L2, dropout 0.2), 3 epochs.
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    from workloads import LR, WORKLOADS, make_data

    w = WORKLOADS["W1"]
    X, y = make_data(w, dtype=np.float32)
    Xtr, ytr, Xte, yte = X[:45000], y[:45000], X[45000:], y[45000:]
    acc = {}
    for n, par in ((1, "sync"), (2, "hogwild")):
        net = nf.MLP(w.layers, random_state=0, dtype=np.float32)
        nf.train(net, Xtr, ytr, epochs=3, batch_size=w.batch_size, lr=LR, dropout=0.2,
                 backend="cython", n_threads=n, parallel=par, random_state=0,
                 thread_mode="data")
        acc[par] = _accuracy(net, Xte, yte)
    assert acc["sync"] > 0.8
    assert acc["hogwild"] >= acc["sync"] - 0.01


@needs_2_cores
@pytest.mark.parametrize("backend", BACKENDS)
def test_thread_settings_held_inside_and_restored(rng, backend):
    import numba

    X, y = _task(rng)
    numba.set_num_threads(1)
    blas_before = _blas_threads()
    seen = []

    def spy(net, hist):
        seen.append((_blas_threads(), numba.get_num_threads()))

    net = nf.MLP((X.shape[1], 16, 3), random_state=0)
    nf.train(net, X, y, epochs=1, backend=backend, n_threads=2, callbacks=[spy],
             thread_mode="data")
    assert seen[0][0] == [1] * len(blas_before)
    # Numba's count is left alone: neither backend runs on Numba's threading layer.
    assert seen[0][1] == 1
    assert _blas_threads() == blas_before
    assert numba.get_num_threads() == 1

    def boom(net, hist):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        nf.train(net, X, y, epochs=1, backend=backend, n_threads=2, callbacks=[boom],
                 thread_mode="data")
    assert _blas_threads() == blas_before
    assert numba.get_num_threads() == 1
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def test_mode_rule():
    def cfg(layers, batch, n=2, par="sync", mode="auto"):
        return loop.TrainConfig(layer_sizes=layers, batch_size=batch, n_threads=n,
                                parallel=par, thread_mode=mode)

    W1, W2, W3 = ((64, 32, 10), 32), ((784, 256, 128, 10), 64), ((784, 1024, 1024, 10), 256)
    W4, W5 = ((64, 32, 10), 1), ((784, 256, 128, 10), 20_000)
    assert choose_mode(cfg(*W1, n=1)) == "serial"
    assert choose_mode(cfg(*W1, n=1, mode="data")) == "serial"
    for be in ("cython", "numba"):
        assert choose_mode(cfg(*W1), be) == "serial"
        assert choose_mode(cfg(*W3), be) == "data"
        assert choose_mode(cfg(*W4), be) == "serial"
        assert choose_mode(cfg(*W5), be) == "data"
        assert choose_mode(cfg(*W3, par="hogwild"), be) == "data"
        assert choose_mode(cfg(*W2, par="hogwild"), be, 60_000) == "data"
        # Hogwild with one-sample steps (W4), or fewer than two batches per thread (W5):
        # what sync gets short of "data".
        assert choose_mode(cfg(*W4, par="hogwild"), be) == "serial"
        assert choose_mode(cfg(*W5, par="hogwild"), be, 20_000) == "blas"
        # Explicit modes are obeyed.
        assert choose_mode(cfg(*W1, mode="data"), be) == "data"
        assert choose_mode(cfg(*W1, mode="blas"), be) == "blas"
        assert choose_mode(cfg(*W4, par="hogwild", mode="data"), be) == "data"
        assert choose_mode(cfg(*W3, mode="blas"), be) == "blas"
    assert choose_mode(cfg(*W2), "cython") == "blas"
    assert choose_mode(cfg(*W2), "numba") == "serial"
    assert choose_mode(cfg(*W1, par="hogwild"), "cython", 50_000) == "serial"
    assert choose_mode(cfg(*W1, par="hogwild"), "numba", 50_000) == "data"
    assert choose_mode(cfg(*W1, par="hogwild"), "numba", 96) == "serial"
    assert choose_mode(cfg(*W1, par="hogwild"), "numba", 97) == "data"
    assert choose_mode(cfg(*W1), None) == choose_mode(cfg(*W1), "cython")
    assert choose_mode(cfg(*W1, mode="data"), "numpy") == "blas"
    # The thresholds sit between the workloads they were measured on.
    for hogwild_from, blas_from, data_from in WORK_THRESHOLDS.values():
        assert 1 * 2_368 < hogwild_from <= 64 * 234_752
        assert 32 * 2_368 < blas_from <= data_from <= 256 * 1_861_632


@needs_2_cores
def test_small_sync_steps_keep_to_one_thread(rng):
    X, y = _task(rng, n=60)
    cfg = loop.TrainConfig(layer_sizes=(12, 4, 3), batch_size=32, n_threads=2)
    with thread_budget(cfg, get_backend("cython")) as run_cfg:
        assert run_cfg.n_threads == 1
        assert set(_blas_threads()) == {1}
    out = []
    for n in (1, 2):
        net = nf.MLP((12, 4, 3), random_state=0, dtype=np.float64)
        nf.train(net, X, y, epochs=2, backend="cython", n_threads=n, random_state=0)
        out.append(net.params.copy())
    np.testing.assert_array_equal(out[0], out[1])


@needs_2_cores
def test_hogwild_with_one_sample_steps_runs_the_serial_epoch(rng):
    # A legal Hogwild schedule: one thread does every step, so the result is the serial one.
    X, y = _task(rng, n=50)
    out = []
    for n, par in ((1, "sync"), (2, "hogwild")):
        net = nf.MLP((X.shape[1], 4, 3), random_state=0, dtype=np.float64)
        nf.train(net, X, y, epochs=2, batch_size=1, lr=0.05, backend="cython", n_threads=n,
                 parallel=par, random_state=0)
        out.append(net.params.copy())
    np.testing.assert_array_equal(out[1], out[0])


def test_thread_mode_is_validated():
    with pytest.raises(ValueError, match="thread_mode"):
        nf.train(nf.MLP((3, 2)), np.zeros((4, 3)), [0, 1, 0, 1], epochs=1,
                 thread_mode="rows")


@needs_2_cores
@pytest.mark.parametrize("backend", BACKENDS)
def test_blas_mode_runs_the_serial_epoch_with_blas_threads(rng, backend):
    X, y = _task(rng, n=300, d=200)
    layers = (200, 300, 3)
    cfg = loop.TrainConfig(layer_sizes=layers, batch_size=64, n_threads=2, thread_mode="blas")
    assert choose_mode(cfg, backend) == "blas"
    with thread_budget(cfg, get_backend(backend)) as run_cfg:
        assert run_cfg.n_threads == 1
        assert set(_blas_threads()) == {2}
    out = []
    for n in (1, 2):
        net = nf.MLP(layers, random_state=0, dtype=np.float64)
        nf.train(net, X, y, epochs=2, batch_size=64, lr=0.01, backend=backend,
                 n_threads=n, dropout=0.1, l2=1e-3, random_state=5, thread_mode="blas")
        out.append(net.params.copy())
    # OpenBLAS may pick other kernels with 2 threads: equal up to the GEMM's rounding.
    assert _rel(out[1], out[0]) <= 1e-12


def test_one_thread_limits_blas_inside_and_restores(rng):
    X, y = _task(rng, n=60)
    before = _blas_threads()
    seen = []
    nf.train(nf.MLP((12, 4, 3)), X, y, epochs=1, backend="cython", n_threads=1,
             callbacks=[lambda net, hist: seen.append(_blas_threads())])
    assert seen == [[1] * len(before)]
    assert _blas_threads() == before

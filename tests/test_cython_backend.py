"""Cython backend: tanh accuracy, epoch parity with the reference, no per-batch allocation."""

import os
import tracemalloc

import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast.kernels import reference as ref
from nnopt_fast.model.mlp import MLP
from nnopt_fast.train.loop import make_config
from nnopt_fast.train.state import TrainState

try:
    from nnopt_fast.kernels import _cython
    from nnopt_fast.kernels import cython_backend as cb
except ImportError:
    # Only a deliberate pure-Python build may lack the extension; anything else must fail.
    if os.environ.get("NNOPT_NO_EXTENSION") != "1":
        raise
    pytest.skip("built with NNOPT_NO_EXTENSION=1", allow_module_level=True)

#: Weights after 3 epochs: float64 agrees to rounding noise amplified by ~100 steps;
#: float32 carries the 1e-7 tanh approximation and float32 rounding through the same steps.
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


# ---------------------------------------------------------------------------
# tanh
# ---------------------------------------------------------------------------
def _tanh_grid(dtype):
    tiny = np.geomspace(1e-30 if dtype == np.float64 else 1e-20, 1e-3, 2000)
    x = np.concatenate([
        np.linspace(-25.0, 25.0, 400_001),
        np.linspace(-1.0, 1.0, 200_001),
        np.linspace(0.6, 0.65, 10_001),  # the switch between the two formulas
        tiny, -tiny,
        [0.0, -0.0, 1e4, -1e4, np.finfo(dtype).max, -np.finfo(dtype).max],
    ])
    return x.astype(dtype)


@pytest.mark.parametrize("dtype, bound", [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_tanh_max_abs_error(dtype, bound):
    x = _tanh_grid(dtype)
    out = np.empty_like(x)
    _cython.tanh(x, out)
    err = np.abs(out.astype(np.float64) - np.tanh(x).astype(np.float64))
    assert err.max() <= bound, f"max abs error {err.max():.3g} at x={x[err.argmax()]!r}"
    assert np.all(np.abs(out) <= 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_special_values(dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30], dtype=dtype)
    out = np.empty_like(x)
    _cython.tanh(x, out)
    assert out[0] == 0 and not np.signbit(out[0])
    assert out[1] == 0 and np.signbit(out[1])
    assert out[2] == 1 and out[3] == -1
    assert np.isnan(out[4])
    assert out[5] == x[5]


# ---------------------------------------------------------------------------
# a few single kernels (the full kernel parity suite lives elsewhere)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("row0", [0, 5])
def test_dropout_mask_bit_identical(row0):
    for seed, layer, step in [(0, 1, 0), (2**63 + 11, 2, 12345), (7, 1, 2**40)]:
        a = np.empty((13, 17), dtype=np.float32)
        b = np.empty((13, 17), dtype=np.float32)
        ref.dropout_mask(seed, layer, step, row0, 0.7, a)
        cb.dropout_mask(seed, layer, step, row0, 0.7, b)
        assert np.array_equal(a, b)
        assert 0 < np.count_nonzero(b) < b.size


@pytest.mark.parametrize("activation", sorted(ref.ACTIVATIONS))
def test_dense_forward_and_backward_match_reference(rng, activation):
    A = rng.standard_normal((7, 13))
    W = rng.standard_normal((13, 5))
    b = rng.standard_normal(5)
    out_r, out_c = np.empty((7, 5)), np.empty((7, 5))
    ref.dense_forward(A, W, b, activation, out_r)
    cb.dense_forward(A, W, b, activation, out_c)
    np.testing.assert_allclose(out_c, out_r, rtol=1e-13, atol=1e-15)
    dZ = rng.standard_normal((7, 5))
    grads = [[np.empty((13, 5)), np.empty(5), np.empty((7, 13))] for _ in range(2)]
    ref.dense_backward(dZ, A, W, 0.25, *grads[0])
    cb.dense_backward(dZ, A, W, 0.25, *grads[1])
    for r, c in zip(*grads):
        np.testing.assert_allclose(c, r, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("output", sorted(ref.OUTPUTS))
def test_output_loss_matches_reference(rng, output):
    Z = rng.standard_normal((9, 4)) * 3
    if output == "softmax":
        T = rng.integers(0, 4, 9)
    elif output == "logistic":
        T = (rng.random((9, 4)) < 0.5).astype(np.float64)
    else:
        T = rng.standard_normal((9, 4))
    sw = rng.random(9)
    g_r, g_c = np.empty_like(Z), np.empty_like(Z)
    Z0 = Z.copy()
    loss_r = ref.output_loss(output, Z, T, sw, g_r)
    loss_c = cb.output_loss(output, Z, T, sw, g_c)
    assert np.array_equal(Z, Z0)
    assert loss_c == pytest.approx(loss_r, rel=1e-13)
    np.testing.assert_allclose(g_c, g_r, rtol=1e-13, atol=1e-16)


# ---------------------------------------------------------------------------
# the whole epoch
# ---------------------------------------------------------------------------
def _data(rng, n, sizes, output, dtype):
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    if output == "softmax":
        T = rng.integers(0, sizes[-1], n).astype(np.int64)
    elif output == "logistic":
        T = (rng.random((n, sizes[-1])) < 0.5).astype(dtype)
    else:
        T = rng.standard_normal((n, sizes[-1])).astype(dtype)
    return X, T


def _train(backend, sizes, activation, output, dtype, X, T, sw, epochs, lr, **cfg_kw):
    net = MLP(sizes, activation=activation, output=output, dtype=dtype, random_state=3)
    cfg = make_config(net, n_samples=len(X), seed=99, **cfg_kw)
    state = TrainState(net, cfg)
    results = []
    for epoch in range(epochs):
        perm = np.random.default_rng(epoch).permutation(len(X)).astype(np.int64)
        res = backend.run_epoch(cfg, state, X, T, sw, perm, lr, state.step)
        results.append(res)
        if res[3]:
            break
        state.step += res[2]
        state.t += res[2]
    return net.params.copy(), results


CASES = [
    # (dtype, sizes, activation, output, sample weights, config); lr keeps each run stable,
    # so that the reference itself is not chaotic at the tolerance.
    (np.float64, (6, 9, 7, 4), "tanh", "softmax", False,
     dict(batch_size=7, l2=0.5, dropout=0.3)),  # plain SGD: decay inside the GEMM
    (np.float64, (6, 8, 3), "relu", "logistic", True,
     dict(batch_size=1, optimizer="adam", l1=0.2, l1_method="proximal", penalty_div=0)),
    (np.float64, (6, 8, 5, 2), "logistic", "identity", True,
     dict(batch_size=None, optimizer="nesterov", l1=0.3, l2=0.1, dropout=0.2)),
    (np.float64, (6, 7, 4), "identity", "softmax", False,
     dict(batch_size=7, optimizer="momentum", l1=0.3, penalty_div=0)),
    (np.float32, (6, 16, 8, 4), "tanh", "softmax", False,
     dict(batch_size=7, l2=0.5, dropout=0.2)),
]


@pytest.mark.parametrize("dtype, sizes, activation, output, weighted, cfg_kw", CASES)
def test_run_epoch_matches_reference(rng, dtype, sizes, activation, output, weighted, cfg_kw):
    X, T = _data(rng, 45, sizes, output, dtype)
    sw = (rng.random(len(X)) + 0.5).astype(dtype) if weighted else None
    X0 = X.copy()
    args = (sizes, activation, output, dtype, X, T, sw, 3, 0.02)
    p_ref, res_ref = _train(ref, *args, **cfg_kw)
    p_cy, res_cy = _train(cb, *args, **cfg_kw)
    assert np.array_equal(X, X0)
    np.testing.assert_allclose(p_cy, p_ref, rtol=RTOL[dtype], atol=RTOL[dtype] * np.abs(p_ref).max())
    for r, c in zip(res_ref, res_cy):
        assert c[2:] == r[2:]
        assert c[0] == pytest.approx(r[0], rel=RTOL[dtype])
        assert c[1] == pytest.approx(r[1], rel=RTOL[dtype], abs=1e-300)


def test_divergence_stops_before_the_update(rng):
    sizes = (4, 8, 3)
    X, T = _data(rng, 60, sizes, "identity", np.float64)
    X[7] *= 1e200  # the batch holding row 7 overflows the squared error
    args = (sizes, "relu", "identity", np.float64, X, T, None, 1, 0.01)
    with np.errstate(over="ignore", invalid="ignore"):
        p_ref, res_ref = _train(ref, *args, batch_size=6)
    p_cy, res_cy = _train(cb, *args, batch_size=6)
    assert res_ref[0][3] == 1
    assert res_cy[0][2:] == res_ref[0][2:]
    np.testing.assert_allclose(p_cy, p_ref, rtol=1e-12)


def test_train_uses_cython_by_default(rng):
    X, T = _data(rng, 64, (5, 6, 3), "softmax", np.float32)
    net = nf.MLP((5, 6, 3), random_state=0)
    hist = nf.train(net, X, T, epochs=2, batch_size=8, random_state=0)
    assert hist.backend == "cython"
    assert np.isfinite(hist.loss).all()


def test_backend_info():
    info = cb.backend_info()
    assert info["simd"] in ("x86-64-v4", "avx2", "default")
    assert "cython_blas" in info["blas"]
    assert "threads" in info["threads"]
    entry = nf.backends()["cython"]
    assert entry["available"] and entry["reason"] is None
    assert entry["simd"] == info["simd"]


def test_epoch_allocates_nothing_per_batch(rng):
    sizes = (8, 64, 4)
    n, batch = 5000, 50
    X, T = _data(rng, n, sizes, "softmax", np.float64)
    net = MLP(sizes, dtype=np.float64, random_state=0)
    cfg = make_config(net, batch_size=batch, n_samples=n, l2=0.1, dropout=0.2)
    state = TrainState(net, cfg)
    perm = rng.permutation(n).astype(np.int64)
    cb.run_epoch(cfg, state, X, T, None, perm, 0.01, 0)  # warm-up: allocates the workspace
    peaks = []
    for n_used in (500, 5000):  # 10 and 100 batches
        p = perm[:n_used].copy()
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            res = cb.run_epoch(cfg, state, X, T, None, p, 0.01, 0)
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
        finally:
            tracemalloc.stop()
        assert res[2] == n_used // batch and res[3] == 0
    # Flat: only the fixed per-call cost (argument views, the result tuple), which is far
    # below the size of a single per-batch activation array.
    one_batch_array = batch * sizes[1] * 8
    assert peaks[1] <= peaks[0] + 256, peaks
    assert peaks[1] < one_batch_array / 4, peaks

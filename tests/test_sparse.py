"""Sparse X trains without being densified: the first layer runs on its non-zeros.

Every backend trains a sparse X to the weights of the same data dense (float64, to the
training parity tolerance), in the serial and the threaded epochs, and inference on a
sparse X equals inference on its dense copy.
"""

import numpy as np
import pytest
import scipy.sparse as sp

import nnopt_fast as nf
from nnopt_fast.kernels import get_backend
from nnopt_fast.kernels.inference import Network
from nnopt_fast.train.loop import make_config
from nnopt_fast.train.state import TrainState
from tolerances import TRAIN_WEIGHT_RTOL

BACKENDS = ("numpy", "cython", "numba")
N, D = 300, 40


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    X = sp.random(N, D, density=0.08, format="csr", random_state=3, dtype=np.float64)
    y = rng.integers(0, 3, N)
    sw = rng.uniform(0.5, 2.0, N)
    perm = rng.permutation(N).astype(np.int64)
    return X, y, sw, perm


def _train(backend, X, y, sw, perm, **cfg_kw):
    net = nf.MLP((D, 16, 3), dtype=np.float64, random_state=0)
    cfg = make_config(net, batch_size=32, n_samples=N, seed=3, **cfg_kw)
    state = TrainState(net, cfg)
    be = get_backend(backend)
    for epoch in range(2):
        _, _, n_steps, status = be.run_epoch(cfg, state, X, y, sw, perm, 0.02, state.step)
        assert status == 0
        state.step += n_steps
        state.t += n_steps
    return net.params.copy()


CONFIGS = {
    "sgd-l2": dict(optimizer="sgd", l2=1.0),
    "sgd-l1-subgradient": dict(optimizer="sgd", l1=0.5),
    "momentum-l1-proximal": dict(optimizer="momentum", l1=0.5, l1_method="proximal"),
    "adam-dropout": dict(optimizer="adam", dropout=0.3, l2=0.5),
    "nesterov": dict(optimizer="nesterov"),
}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_trains_to_the_dense_weights(data, backend, config):
    X, y, sw, perm = data
    dense = _train("numpy", np.ascontiguousarray(X.toarray()), y, sw, perm, **CONFIGS[config])
    sparse = _train(backend, X, y, sw, perm, **CONFIGS[config])
    err = np.abs(sparse - dense).max() / np.abs(dense).max()
    assert err <= TRAIN_WEIGHT_RTOL[np.dtype(np.float64)]


@pytest.mark.parametrize("parallel", ["sync", "hogwild"])
@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_sparse_threaded_epochs(data, backend, parallel):
    X, y, sw, perm = data
    kw = dict(optimizer="adam", l2=0.5, n_threads=2, parallel=parallel, thread_mode="data")
    got = _train(backend, X, y, sw, perm, **kw)
    if parallel == "sync":
        # Deterministic: the dense data's threaded result, to the parity tolerance.
        want = _train(backend, np.ascontiguousarray(X.toarray()), y, sw, perm, **kw)
        assert np.abs(got - want).max() / np.abs(want).max() <= 1e-10
    else:
        assert np.isfinite(got).all()


@pytest.mark.parametrize("fmt", ["csc", "coo", "csr_array"])
def test_other_sparse_formats_are_converted_and_never_modified(data, fmt):
    X, y, sw, perm = data
    other = sp.csr_array(X) if fmt == "csr_array" else X.asformat(fmt)
    before = other.copy()
    got = _train("cython", other, y, sw, perm, optimizer="sgd")
    want = _train("cython", X, y, sw, perm, optimizer="sgd")
    np.testing.assert_array_equal(got, want)
    assert (abs(other - before)).max() == 0 and other.format == before.format


def test_sparse_of_another_float_dtype_is_refused(data):
    X, y, sw, perm = data
    with pytest.raises(TypeError, match="X must be float64, got float32"):
        _train("cython", X.astype(np.float32), y, sw, perm, optimizer="sgd")


@pytest.mark.parametrize("layers", [(D, 3), (D, 16, 3), (D, 16, 8, 3)])
def test_inference_on_sparse_equals_dense(data, layers):
    X = data[0]
    rng = np.random.default_rng(1)
    coefs = [rng.standard_normal((a, b)) for a, b in zip(layers[:-1], layers[1:])]
    intercepts = [rng.standard_normal(b) for b in layers[1:]]
    net = Network(coefs, intercepts, "tanh", "softmax")
    dense = net(np.ascontiguousarray(X.toarray()))
    np.testing.assert_allclose(net(X), dense, rtol=1e-12, atol=1e-15)
    bad = X.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        net(bad)


def test_nf_train_and_predict_on_sparse_x_equal_dense(data):
    X, y, sw, _ = data
    nets = []
    for Xin in (X, np.ascontiguousarray(X.toarray())):
        net = nf.MLP((D, 16, 3), dtype=np.float64, random_state=0)
        hist = nf.train(net, Xin, y, epochs=3, batch_size=32, lr=0.05, optimizer="adam",
                        l2=0.5, dropout=0.2, random_state=1, validation_split=0.2,
                        sample_weight=sw)
        nets.append((net, hist))
    (ns, hs), (nd, hd) = nets
    assert np.abs(ns.params - nd.params).max() / np.abs(nd.params).max() <= 1e-10
    np.testing.assert_allclose(hs.val_loss, hd.val_loss, rtol=1e-10)
    np.testing.assert_allclose(ns.predict_proba(X), nd.predict_proba(X.toarray()), rtol=1e-10)
    assert ns.loss(X, y) == pytest.approx(nd.loss(X.toarray(), y), rel=1e-10)

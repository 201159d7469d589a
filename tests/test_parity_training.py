"""Whole-training parity: 3 epochs on every backend give the reference's weights and losses."""

import functools
import itertools
import os

import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast.kernels import get_backend
from nnopt_fast.kernels.plan import LAYOUTS
from nnopt_fast.train.loop import make_config, run_epochs
from nnopt_fast.train.state import TrainState
from tolerances import TRAIN_LOSS_RTOL, TRAIN_WEIGHT_RTOL

#: Development only: turn a missing compiled backend into a skip instead of a failure.
#: CI installs all three backends, so there a missing one must fail loudly.
ALLOW_MISSING = os.environ.get("NNOPT_ALLOW_MISSING_BACKENDS") == "1"

COMPILED = ("cython", "numba")
LAYERS = (5, 7, 4, 3)
N_SAMPLES = 40
EPOCHS = 3
DROPOUT = 0.3
SEED = 314159
#: A learning rate per optimizer that trains this small net without diverging.
LR = {"sgd": 0.1, "momentum": 0.003, "nesterov": 0.003, "adam": 0.01}
#: Penalty settings: (l2, l1, l1_method).
PENALTIES = {
    "none": (0.0, 0.0, "subgradient"),
    "l2": (0.5, 0.0, "subgradient"),
    "l1-subgradient": (0.0, 0.5, "subgradient"),
    "l1-proximal": (0.0, 0.5, "proximal"),
    "l2+l1-proximal": (0.5, 0.5, "proximal"),
}

#: Values of every axis; the design below covers each pair of values of any two axes.
AXES = {
    "optimizer": ("sgd", "momentum", "nesterov", "adam"),
    "penalty": tuple(PENALTIES),
    "batch": (1, 7, None),
    "output": ("softmax", "logistic", "identity", "exp"),
    "activation": ("tanh", "relu", "logistic", "identity"),
    "sample_weight": (False, True),
    "penalty_div": ("m", 0),
}

#: A pairwise (strength-2) covering design of AXES: 27 rows instead of 7,680. Batch 7
#: does not divide n = 40 (the last batch has 5 rows); penalty_div "m" runs through
#: ``nf.train`` (the tutorial's l2 / m), 0 through ``make_config(..., penalty_div=0)``
#: and ``run_epochs`` (scikit-learn's per-batch convention). Every row runs in both
#: dtypes, with dropout off and on.
DESIGN = (
    ("sgd", "none", 1, "softmax", "tanh", False, "m"),
    ("sgd", "l2", 7, "logistic", "relu", True, 0),
    ("momentum", "l1-subgradient", None, "identity", "logistic", False, 0),
    ("nesterov", "l1-proximal", 1, "identity", "identity", True, "m"),
    ("adam", "l2+l1-proximal", 7, "softmax", "logistic", True, "m"),
    ("nesterov", "l2+l1-proximal", None, "logistic", "tanh", False, 0),
    ("adam", "l2", None, "softmax", "identity", False, 0),
    ("momentum", "none", None, "logistic", "relu", True, "m"),
    ("adam", "l1-proximal", 1, "logistic", "relu", False, 0),
    ("adam", "l1-subgradient", 7, "identity", "tanh", True, "m"),
    ("sgd", "none", 7, "identity", "identity", False, 0),
    ("momentum", "l2", 1, "softmax", "tanh", False, "m"),
    ("nesterov", "l1-subgradient", 1, "softmax", "relu", False, "m"),
    ("sgd", "l1-proximal", None, "softmax", "logistic", False, "m"),
    ("sgd", "l2+l1-proximal", 1, "identity", "relu", False, "m"),
    ("momentum", "l1-subgradient", 7, "logistic", "identity", False, "m"),
    ("nesterov", "none", 1, "logistic", "logistic", False, "m"),
    ("nesterov", "l2", 7, "identity", "logistic", False, "m"),
    ("momentum", "l1-proximal", 7, "softmax", "tanh", False, "m"),
    ("momentum", "l2+l1-proximal", 1, "softmax", "identity", False, "m"),
    ("sgd", "l1-subgradient", 1, "softmax", "tanh", False, "m"),
    ("adam", "none", 1, "softmax", "tanh", False, "m"),
    # The exp output (Poisson deviance) against every value of every other axis.
    ("sgd", "none", 1, "exp", "tanh", False, "m"),
    ("momentum", "l2", 7, "exp", "relu", True, 0),
    ("nesterov", "l1-subgradient", None, "exp", "logistic", False, 0),
    ("adam", "l1-proximal", 1, "exp", "identity", True, "m"),
    ("sgd", "l2+l1-proximal", 7, "exp", "tanh", True, "m"),
)


def require_backend(name):
    """The backend module, or a test failure that quotes ``nf.backends()``'s reason."""
    info = nf.backends()[name]
    if not info["available"]:
        msg = f"backend {name!r} is not available: {info['reason']}"
        if ALLOW_MISSING:
            pytest.skip(msg)
        pytest.fail(msg)
    return get_backend(name)


def _data(output, dtype, with_sw):
    """Fixed training data for one output layer: X, targets, sample weights (or None)."""
    rng = np.random.default_rng(SEED)
    n, n_in, n_out = N_SAMPLES, LAYERS[0], LAYERS[-1]
    X = rng.standard_normal((n, n_in)).astype(dtype)
    if output == "softmax":
        T = (X.astype(np.float64) @ rng.standard_normal((n_in, n_out))).argmax(axis=1)
        T = T.astype(np.int64)
    elif output == "logistic":
        T = (rng.random((n, n_out)) < 0.4).astype(dtype)
    elif output == "exp":
        T = rng.poisson(1.0, (n, n_out)).astype(dtype)
    else:
        T = rng.standard_normal((n, n_out)).astype(dtype)
    # Weights bounded away from 0: a batch of one zero-weight sample has no gradient scale.
    sw = rng.uniform(0.2, 2.0, n).astype(dtype) if with_sw else None
    return X, T, sw


@functools.lru_cache(maxsize=None)
def _train(backend, row, dtype_name, dropout):
    """Train the row's model for 3 epochs on ``backend``; return (params, epoch losses)."""
    opt, pen, batch, output, act, with_sw, div = row
    dtype = np.dtype(dtype_name)
    l2, l1, l1_method = PENALTIES[pen]
    X, T, sw = _data(output, dtype, with_sw)
    net = nf.MLP(LAYERS, activation=act, output=output, dtype=dtype, random_state=0)
    p = DROPOUT if dropout else 0.0
    if div == "m":
        hist = nf.train(net, X, T, epochs=EPOCHS, batch_size=batch, lr=LR[opt], optimizer=opt,
                        l2=l2, l1=l1, l1_method=l1_method, dropout=p, random_state=SEED,
                        backend=backend, sample_weight=sw)
        losses = hist.loss
    else:
        cfg = make_config(net, batch_size=batch, n_samples=N_SAMPLES, optimizer=opt, l2=l2,
                          l1=l1, l1_method=l1_method, penalty_div=0, dropout=p, seed=SEED)
        state = TrainState(net, cfg)
        losses = run_epochs(get_backend(backend), cfg, state, X, T, sw, epochs=EPOCHS,
                            lr=LR[opt], rng=np.random.default_rng(SEED))
    return net.params.copy(), np.asarray(losses, dtype=np.float64)


def _row_id(row):
    opt, pen, batch, output, act, with_sw, div = row
    return (f"{opt}-{pen}-B{'full' if batch is None else batch}-{output}-{act}"
            f"-{'sw' if with_sw else 'nosw'}-div{div}")


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dropout", [False, True], ids=["nodrop", "dropout"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("row", DESIGN, ids=[_row_id(r) for r in DESIGN])
def test_training_matches_reference(row, dtype, dropout, backend):
    require_backend(backend)
    want_w, want_loss = _train("numpy", row, dtype, dropout)
    got_w, got_loss = _train(backend, row, dtype, dropout)
    assert got_w.dtype == np.dtype(dtype)
    assert np.isfinite(want_w).all(), "the reference run itself blew up: pick a smaller lr"
    w_err = np.max(np.abs(got_w.astype(np.float64) - want_w)) / np.max(np.abs(want_w))
    assert w_err <= TRAIN_WEIGHT_RTOL[np.dtype(dtype)], (
        f"final weights differ from the reference by {w_err:.3g} (max|a-b|/max|b|)")
    assert got_loss.shape == want_loss.shape
    l_err = np.max(np.abs(got_loss - want_loss) / np.abs(want_loss))
    assert l_err <= TRAIN_LOSS_RTOL[np.dtype(dtype)], (
        f"epoch losses {got_loss} differ from the reference's {want_loss} by {l_err:.3g}")


def test_dropout_changes_training():
    """The dropout-on cases are not silently dropout-off: the reference's weights differ."""
    row = DESIGN[0]
    off, _ = _train("numpy", row, "float64", False)
    on, _ = _train("numpy", row, "float64", True)
    assert np.max(np.abs(on - off)) > 1e-3


def test_design_covers_every_pair():
    """Each pair of values of any two axes appears in some row of DESIGN."""
    names = list(AXES)
    assert all(len(row) == len(names) for row in DESIGN)
    for i, j in itertools.combinations(range(len(names)), 2):
        seen = {(row[i], row[j]) for row in DESIGN}
        missing = set(itertools.product(AXES[names[i]], AXES[names[j]])) - seen
        assert not missing, (f"pairs of {names[i]} x {names[j]} not covered: "
                             f"{sorted(missing, key=str)}")


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_in", [8, 9, 16, 17, 24, 40])
def test_narrow_nets_in_the_small_kernels_layout_match_reference(n_in, dtype, backend):
    """Input widths around the vector length (8 doubles, 16 floats): the batch gather's
    whole tiles, its overlapping last tile and its one-by-one features, with dropout,
    in the features layout the rule picks for nets this narrow."""
    require_backend(backend)
    dt = np.dtype(dtype)
    rng = np.random.default_rng(n_in)
    n = 150  # batch 48: three whole tiles of 16 columns, a last batch of 6 rows
    X = rng.standard_normal((n, n_in)).astype(dt)
    y = (X.astype(np.float64) @ rng.standard_normal((n_in, 3))).argmax(axis=1)
    results = {}
    for name in ("numpy", backend):
        net = nf.MLP((n_in, 8, 3), activation="tanh", output="softmax", dtype=dt,
                     random_state=0)
        cfg = make_config(net, batch_size=48, n_samples=n, optimizer="adam", l2=1e-3,
                          dropout=0.2, seed=SEED)
        state = TrainState(net, cfg)
        losses = run_epochs(require_backend(name), cfg, state, X, y, None, epochs=EPOCHS,
                            lr=0.01, rng=np.random.default_rng(SEED))
        if name == backend and backend == "cython":
            assert state.workspace["plan"][1].layout == LAYOUTS["features"]
        results[name] = net.params.copy(), np.asarray(losses)
    (want_w, want_l), (got_w, got_l) = results["numpy"], results[backend]
    w_err = np.max(np.abs(got_w.astype(np.float64) - want_w)) / np.max(np.abs(want_w))
    assert w_err <= TRAIN_WEIGHT_RTOL[dt]
    assert np.max(np.abs(got_l - want_l) / np.abs(want_l)) <= TRAIN_LOSS_RTOL[dt]

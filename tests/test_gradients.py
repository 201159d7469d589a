"""Finite-difference checks of the reference kernels' gradients, and of run_epoch's step."""

import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast.kernels import reference as ref
from nnopt_fast.train.loop import make_config
from nnopt_fast.train.state import TrainState

ACTIVATIONS = ["tanh", "relu", "logistic", "identity"]
OUTPUTS = ["softmax", "logistic", "identity", "exp"]
#: (l2, l1) pairs: no penalty, L2 only, L1 only (the weights are kept away from 0, where
#: |W| has no derivative).
PENALTIES = [(0.0, 0.0), (0.7, 0.0), (0.0, 0.9)]
SIZES = [4, 5, 4, 3]
N_SAMPLES = 9

#: Central differences: truncation error h^2 |J'''| / 6 ~ 1e-11 and round-off
#: eps |J| / h ~ 1e-11 for h = 1e-5 and |J| ~ 1, so rtol 1e-6 holds for every entry larger
#: than ~1e-5; ATOL covers entries near 0, where a relative comparison means nothing.
H = 1e-5
RTOL = 1e-6
ATOL = 1e-9


def make_problem(rng, activation, output):
    """A float64 net with weights of magnitude in [0.1, 0.9] and matching random targets."""
    net = nf.MLP(SIZES, activation=activation, output=output, dtype=np.float64)
    for W, b in zip(net.coefs_, net.intercepts_):
        W[...] = rng.choice([-1.0, 1.0], W.shape) * rng.uniform(0.1, 0.9, W.shape)
        b[...] = rng.uniform(-0.5, 0.5, b.shape)
    X = rng.normal(size=(N_SAMPLES, SIZES[0]))
    n_out = SIZES[-1]
    if output == "softmax":
        y = rng.integers(0, n_out, N_SAMPLES)
        T = y.astype(np.int64)
    elif output == "logistic":
        y = rng.integers(0, 2, (N_SAMPLES, n_out))
        T = y.astype(np.float64)
    elif output == "exp":
        # Poisson counts, zeros included (the deviance's Y log Y term is 0 there).
        y = rng.poisson(2.0, (N_SAMPLES, n_out)).astype(np.float64)
        T = y
    else:
        y = rng.normal(size=(N_SAMPLES, n_out))
        T = y
    return net, X, y, T


def kernel_cost_and_gradient(net, X, T, l2, l1, masks=None, sw=None, penalty_div=None,
                             l1_subgradient=True):
    """Cost J and dJ/dparams from the reference kernels alone, over one batch = all of X.

    ``masks[l]`` (optional) is a fixed dropout mask applied after hidden layer ``l + 1``;
    ``sw`` are sample weights; the penalty is divided by ``penalty_div`` (default: the
    batch weight, len(X) without weights). Returns the gradient flattened in the layout of
    ``net.params`` (W_1, b_1, W_2, ...).
    """
    m = X.shape[0]
    S = float(m) if sw is None else float(sw.sum())
    d = S if penalty_div is None else penalty_div
    coefs, intercepts = net.coefs_, net.intercepts_
    A, Hs, Ms = [X], [None], [None]
    for l in range(1, net.n_layers):
        h = np.empty((m, coefs[l - 1].shape[1]))
        ref.dense_forward(A[-1], coefs[l - 1], intercepts[l - 1], net.activation, h)
        M = None if masks is None else masks[l - 1]
        A.append(h if M is None else h * M)
        Hs.append(h)
        Ms.append(M)
    Z = np.empty((m, coefs[-1].shape[1]))
    ref.dense_forward(A[-1], coefs[-1], intercepts[-1], "identity", Z)
    dZ = np.empty_like(Z)
    J = ref.output_loss(net.output, Z, T, sw, dZ) / S + ref.penalty(coefs, l2, l1, d)
    gW = [np.empty_like(W) for W in coefs]
    gb = [np.empty_like(b) for b in intercepts]
    for l in range(net.n_layers, 0, -1):
        dA = None if l == 1 else np.empty_like(A[l - 1])
        ref.dense_backward(dZ, A[l - 1], coefs[l - 1], 1.0 / S, gW[l - 1], gb[l - 1], dA)
        if l > 1:
            ref.activation_backward(Hs[l - 1], dA, net.activation, dA, Ms[l - 1])
            dZ = dA
    for W, g in zip(coefs, gW):
        ref.inplace_l2_grad(g, W, l2 / d)
        if l1_subgradient:
            ref.inplace_l1_subgradient(g, W, l1 / (2.0 * d))
    return J, np.concatenate([a.ravel() for pair in zip(gW, gb) for a in pair])


def central_differences(cost, params):
    """dcost/dparams by central differences, perturbing ``params`` in place (then restoring)."""
    g = np.empty_like(params)
    for i in range(params.size):
        keep = params[i]
        params[i] = keep + H
        up = cost()
        params[i] = keep - H
        down = cost()
        params[i] = keep
        g[i] = (up - down) / (2 * H)
    return g


@pytest.mark.parametrize("l2, l1", PENALTIES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_matches_finite_differences(rng, activation, output, l2, l1):
    net, X, y, T = make_problem(rng, activation, output)
    J, grad = kernel_cost_and_gradient(net, X, T, l2, l1)
    # The numerical side uses the public cost MLP.loss, so the kernels' gradient is checked
    # against the J the user sees (with m = len(X)).
    assert J == pytest.approx(net.loss(X, y, l2=l2, l1=l1), rel=1e-12)
    numerical = central_differences(lambda: net.loss(X, y, l2=l2, l1=l1), net.params)
    np.testing.assert_allclose(grad, numerical, rtol=RTOL, atol=ATOL)
    assert np.abs(grad).max() > 1e-3  # a vacuous all-zero gradient would pass trivially


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_with_fixed_dropout_masks(rng, activation):
    """Backward through a dropout layer uses the forward mask: the gradient of the masked
    network matches finite differences of that same masked network."""
    net, X, _, T = make_problem(rng, activation, "softmax")
    masks = []
    for l, n_units in enumerate(SIZES[1:-1], start=1):
        M = np.empty((N_SAMPLES, n_units))
        ref.dropout_mask(2024, l, 0, 0, 0.6, M)
        masks.append(M)
    assert any((M == 0).any() for M in masks) and any((M > 0).any() for M in masks)
    _, grad = kernel_cost_and_gradient(net, X, T, 0.3, 0.0, masks)
    numerical = central_differences(
        lambda: kernel_cost_and_gradient(net, X, T, 0.3, 0.0, masks)[0], net.params)
    np.testing.assert_allclose(grad, numerical, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("l2, l1", PENALTIES)
@pytest.mark.parametrize("output", OUTPUTS)
def test_run_epoch_full_batch_sgd_step_is_minus_lr_times_gradient(rng, output, l2, l1):
    """One batch gradient-descent step of run_epoch is W - lr * (the checked gradient)."""
    net, X, _, T = make_problem(rng, "tanh", output)
    _, grad = kernel_cost_and_gradient(net, X, T, l2, l1)
    J = net.loss(X, T, l2=l2, l1=l1)
    before = net.params.copy()
    cfg = make_config(net, batch_size=None, n_samples=N_SAMPLES, l2=l2, l1=l1)
    state = TrainState(net, cfg)
    lr = 0.05
    data, pen, n_steps, status = ref.run_epoch(cfg, state, X, T, None,
                                               np.arange(N_SAMPLES, dtype=np.int64), lr, 0)
    assert (n_steps, status) == (1, 0)
    assert (data + pen) / N_SAMPLES == pytest.approx(J, rel=1e-12)
    np.testing.assert_allclose(net.params, before - lr * grad, rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------------------
# run_epoch over several mini-batches, against the kernels' gradient and the
# optimizers' written-out formulas
# ---------------------------------------------------------------------------
def manual_epoch(net, X, T, perm, batch_size, lr, optimizer, l2=0.0, l1=0.0,
                 l1_method="subgradient", mu=0.9, b1=0.9, b2=0.999, eps=1e-8, sw=None,
                 penalty_div=None, dropout=0.0, seed=0):
    """What run_epoch's docstring says one epoch does, step by step; updates ``net``."""
    w = net.params
    v, m_, v_ = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    is_bias = np.concatenate([np.full(a.size, k % 2 == 1)
                              for k, a in enumerate(a for p in zip(net.coefs_, net.intercepts_)
                                                    for a in p)])
    for k, start in enumerate(range(0, len(perm), batch_size)):
        idx = perm[start:start + batch_size]
        masks = None
        if dropout:
            masks = [ref.dropout_mask(seed, l, k, 0, 1.0 - dropout, np.empty((len(idx), n)))
                     for l, n in enumerate(net.layer_sizes[1:-1], start=1)]
        _, g = kernel_cost_and_gradient(
            net, X[idx], T[idx], l2, l1, masks=masks, sw=None if sw is None else sw[idx],
            penalty_div=penalty_div, l1_subgradient=l1_method == "subgradient")
        if optimizer == "sgd":
            w -= lr * g
        elif optimizer == "momentum":
            v[...] = mu * v - lr * g
            w += v
        elif optimizer == "nesterov":
            v[...] = mu * v - lr * g
            w += mu * v - lr * g
        else:
            t = k + 1
            m_[...] = b1 * m_ + (1 - b1) * g
            v_[...] = b2 * v_ + (1 - b2) * g * g
            w -= lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m_ / (np.sqrt(v_) + eps)
        if l1 and l1_method == "proximal":
            d = (len(idx) if sw is None else sw[idx].sum()) if penalty_div is None else penalty_div
            thr = lr * l1 / (2 * d)
            w[~is_bias] = np.sign(w[~is_bias]) * np.maximum(np.abs(w[~is_bias]) - thr, 0.0)


def run_reference_epoch(net, X, T, perm, lr, sw=None, step0=0, **config):
    cfg = make_config(net, n_samples=len(X), **config)
    state = TrainState(net, cfg)
    return ref.run_epoch(cfg, state, X, T, sw, perm, lr, step0), cfg


N_EPOCH = 10  # rows in the multi-step tests: batches of 4, 4 and a short last one of 2


@pytest.mark.parametrize("l2, l1, l1_method", [
    (0.5, 0.0, "subgradient"), (0.0, 0.8, "subgradient"), (0.3, 0.8, "proximal")])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_run_epoch_mini_batches_follow_the_formulas(rng, optimizer, l2, l1, l1_method):
    net, _, _, _ = make_problem(rng, "tanh", "softmax")
    X = rng.normal(size=(N_EPOCH, SIZES[0]))
    T = rng.integers(0, SIZES[-1], N_EPOCH).astype(np.int64)
    perm = rng.permutation(N_EPOCH).astype(np.int64)
    twin = net.copy()
    lr = 0.05
    (_, _, n_steps, status), _ = run_reference_epoch(
        net, X, T, perm, lr, batch_size=4, optimizer=optimizer, l2=l2, l1=l1,
        l1_method=l1_method)
    assert (n_steps, status) == (3, 0)
    manual_epoch(twin, X, T, perm, 4, lr, optimizer, l2=l2, l1=l1, l1_method=l1_method,
                 penalty_div=N_EPOCH)
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-12, atol=1e-14)
    if l1_method == "proximal":
        # The soft threshold is lr * l1 / (2m) = 0.002: weights start >= 0.1 away from 0,
        # so none is zeroed yet, but each moved toward 0 by the threshold after the step.
        assert np.all(net.coefs_[0] != 0)


def test_run_epoch_proximal_l1_gives_exact_zeros(rng):
    net, X, _, T = make_problem(rng, "tanh", "softmax")
    run_reference_epoch(net, X, T, np.arange(N_SAMPLES, dtype=np.int64), 0.1,
                        batch_size=None, l1=200.0, l1_method="proximal")
    # Threshold lr * l1 / (2m) = 0.1 * 200 / 18 > 1 > every |W|: all weights become 0.
    for W in net.coefs_:
        np.testing.assert_array_equal(W, 0.0)
    assert all(np.any(b != 0) for b in net.intercepts_)  # biases are not penalized


def test_run_epoch_dropout_uses_the_keyed_masks_in_forward_and_backward(rng):
    net, _, _, _ = make_problem(rng, "relu", "softmax")
    X = rng.normal(size=(N_EPOCH, SIZES[0]))
    T = rng.integers(0, SIZES[-1], N_EPOCH).astype(np.int64)
    perm = np.arange(N_EPOCH, dtype=np.int64)
    twin, plain = net.copy(), net.copy()
    (_, _, n_steps, status), _ = run_reference_epoch(
        net, X, T, perm, 0.1, batch_size=4, dropout=0.4, seed=31337, l2=0.2)
    assert (n_steps, status) == (3, 0)
    manual_epoch(twin, X, T, perm, 4, 0.1, "sgd", l2=0.2, penalty_div=N_EPOCH, dropout=0.4,
                 seed=31337)
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-12, atol=1e-14)
    manual_epoch(plain, X, T, perm, 4, 0.1, "sgd", l2=0.2, penalty_div=N_EPOCH)
    assert not np.allclose(net.params, plain.params)  # dropout did change the steps


def test_run_epoch_sample_weights_with_per_batch_penalty(rng):
    """sw weights the batch mean (divided by the batch's weight sum); penalty_div=0 is
    scikit-learn's per-batch convention (penalty divided by that same sum)."""
    net, _, _, _ = make_problem(rng, "tanh", "identity")
    X = rng.normal(size=(N_EPOCH, SIZES[0]))
    T = rng.normal(size=(N_EPOCH, SIZES[-1]))
    sw = rng.uniform(0.5, 2.0, N_EPOCH)
    perm = rng.permutation(N_EPOCH).astype(np.int64)
    twin = net.copy()
    (_, _, n_steps, status), _ = run_reference_epoch(
        net, X, T, perm, 0.05, sw=sw, batch_size=4, l2=0.3, penalty_div=0)
    assert (n_steps, status) == (3, 0)
    manual_epoch(twin, X, T, perm, 4, 0.05, "sgd", l2=0.3, sw=sw)
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-12, atol=1e-14)


def test_integer_sample_weight_equals_repeating_the_row(rng):
    net, X, _, T = make_problem(rng, "tanh", "softmax")
    twin = net.copy()
    sw = np.ones(N_SAMPLES)
    sw[2] = 3.0
    run_reference_epoch(net, X, T, np.arange(N_SAMPLES, dtype=np.int64), 0.1, sw=sw,
                        batch_size=None)
    Xr, Tr = np.vstack([X, X[[2, 2]]]), np.concatenate([T, T[[2, 2]]])
    run_reference_epoch(twin, Xr, Tr, np.arange(N_SAMPLES + 2, dtype=np.int64), 0.1,
                        batch_size=None)
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-12, atol=1e-15)


def test_run_epoch_stops_before_updating_on_a_non_finite_batch_loss(rng):
    net, _, _, _ = make_problem(rng, "identity", "identity")
    X = rng.normal(size=(8, SIZES[0]))
    X[5] = 1e200  # the second batch's squared error overflows to inf
    T = rng.normal(size=(8, SIZES[-1]))
    perm = np.arange(8, dtype=np.int64)
    twin = net.copy()
    with np.errstate(over="ignore", invalid="ignore"):
        (data, pen, n_steps, status), _ = run_reference_epoch(net, X, T, perm, 0.01,
                                                              batch_size=4)
    assert (n_steps, status) == (1, 1)
    assert np.isfinite(data)
    manual_epoch(twin, X[:4], T[:4], perm[:4], 4, 0.01, "sgd", penalty_div=8)
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-12, atol=1e-15)


def test_run_epoch_float32_keeps_dtype_and_tracks_float64(rng):
    net64, X, _, T = make_problem(rng, "tanh", "softmax")
    net32 = nf.MLP.from_weights(net64.coefs_, net64.intercepts_, dtype=np.float32)
    perm = rng.permutation(N_SAMPLES).astype(np.int64)
    (d64, _, _, _), _ = run_reference_epoch(net64, X, T, perm, 0.1, batch_size=3,
                                            optimizer="adam", dropout=0.3, seed=5)
    (d32, _, _, s32), _ = run_reference_epoch(net32, X.astype(np.float32), T, perm, 0.1,
                                              batch_size=3, optimizer="adam", dropout=0.3,
                                              seed=5)
    assert s32 == 0 and net32.params.dtype == np.float32
    # Same masks (keyed by seed, layer, step) in both dtypes: only rounding differs.
    np.testing.assert_allclose(net32.params, net64.params, rtol=1e-4, atol=1e-4)
    assert d32 == pytest.approx(d64, rel=1e-4)

"""The NumPy reference kernels against their written-out math (the docstrings are the spec)."""

import numpy as np
import pytest

from nnopt_fast.kernels import reference as ref
from nnopt_fast.kernels.hashing import mix64_int

DTYPES = [np.float32, np.float64]
#: float32 results are compared with float64 formulas up to a few float32 ulps.
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def g_of(Z, activation):
    """The activation g, written out independently of the kernels."""
    return {
        "tanh": np.tanh(Z),
        "relu": np.where(Z > 0, Z, 0.0),
        "logistic": 1.0 / (1.0 + np.exp(-Z)),
        "identity": Z,
    }[activation]


# ---------------------------------------------------------------------------
# forward and backward through activations
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic", "identity"])
def test_dense_forward_is_g_of_affine_map(rng, activation, dtype):
    A = rng.normal(size=(7, 5)).astype(dtype)
    W = rng.normal(size=(5, 3)).astype(dtype)
    b = rng.normal(size=3).astype(dtype)
    inputs = [a.copy() for a in (A, W, b)]
    out = np.empty((7, 3), dtype=dtype)
    res = ref.dense_forward(A, W, b, activation, out)
    assert res is out and out.dtype == dtype
    expected = g_of(A.astype(np.float64) @ W.astype(np.float64) + b, activation)
    np.testing.assert_allclose(out, expected, rtol=RTOL[dtype], atol=RTOL[dtype])
    for before, after in zip(inputs, (A, W, b)):
        np.testing.assert_array_equal(before, after)


def test_logistic_of_very_negative_input_is_zero_without_warning():
    Z = np.array([[-1000.0, 0.0, 1000.0]])
    out = np.empty_like(Z)
    with np.errstate(over="raise"):
        ref.dense_forward(np.eye(1), Z, np.zeros(3), "logistic", out)
    np.testing.assert_array_equal(out, [[0.0, 0.5, 1.0]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation, derivative", [
    ("tanh", lambda H: 1.0 - H**2),
    ("relu", lambda H: (H > 0).astype(float)),
    ("logistic", lambda H: H * (1.0 - H)),
    ("identity", lambda H: np.ones_like(H)),
])
def test_activation_backward_from_outputs(rng, activation, derivative, dtype):
    Z = rng.normal(size=(6, 4))
    H = g_of(Z, activation).astype(dtype)
    dA = rng.normal(size=(6, 4)).astype(dtype)
    out = np.empty_like(dA)
    assert ref.activation_backward(H, dA, activation, out) is out
    expected = dA.astype(np.float64) * derivative(H.astype(np.float64))
    np.testing.assert_allclose(out, expected, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert out.dtype == dtype
    # With a dropout mask the gradient is also multiplied by it (0 or 1/keep), in place.
    M = np.where(rng.random((6, 4)) < 0.5, 0.0, 2.0).astype(dtype)
    ref.activation_backward(H, dA, activation, dA, M)
    np.testing.assert_allclose(dA, expected * M, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert np.all(dA[M == 0] == 0)


def test_unknown_activation_is_rejected_naming_it():
    X = np.ones((2, 2))
    with pytest.raises(ValueError, match="activation.*'swish'"):
        ref.dense_forward(X, X, np.zeros(2), "swish", np.empty((2, 2)))
    with pytest.raises(ValueError, match="activation.*'swish'"):
        ref.activation_backward(X, X, "swish", np.empty((2, 2)))


# ---------------------------------------------------------------------------
# output layers and losses
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy(rng, dtype):
    Z = rng.normal(size=(5, 4)).astype(dtype)
    y = np.array([0, 3, 1, 1, 2])
    sw = np.array([1.0, 2.0, 0.5, 0.0, 1.0], dtype=dtype)
    Z64 = Z.astype(np.float64)
    P = np.exp(Z64) / np.exp(Z64).sum(axis=1, keepdims=True)
    onehot = np.eye(4)[y]
    out = np.empty_like(Z)
    loss = ref.softmax_cross_entropy(Z, y, None, out)
    assert loss == pytest.approx(-np.log(P[np.arange(5), y]).sum(), rel=RTOL[dtype])
    np.testing.assert_allclose(out, P - onehot, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert out.dtype == dtype
    # Weighted: sum of sw_i L_i, gradient rows scaled by sw_i; out may alias Z.
    loss_w = ref.softmax_cross_entropy(Z, y, sw, Z)
    assert loss_w == pytest.approx((-np.log(P[np.arange(5), y]) * sw).sum(), rel=RTOL[dtype])
    np.testing.assert_allclose(Z, (P - onehot) * sw[:, None], rtol=RTOL[dtype], atol=RTOL[dtype])


def test_softmax_cross_entropy_clips_like_scikit_learn():
    # P[true] underflows to 0: the loss is -log(eps), finite, as in scikit-learn.
    Z = np.array([[0.0, 800.0]])
    loss = ref.softmax_cross_entropy(Z, np.array([0]), None, np.empty_like(Z))
    assert loss == pytest.approx(-np.log(np.finfo(np.float64).eps))


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_cross_entropy(rng, dtype):
    Z = rng.normal(size=(5, 3)).astype(dtype)
    Y = rng.integers(0, 2, (5, 3)).astype(dtype)
    sw = rng.uniform(0, 2, 5).astype(dtype)
    P = 1.0 / (1.0 + np.exp(-Z.astype(np.float64)))
    L = -(Y * np.log(P) + (1 - Y) * np.log(1 - P)).sum(axis=1)
    out = np.empty_like(Z)
    assert ref.logistic_cross_entropy(Z, Y, None, out) == pytest.approx(L.sum(), rel=RTOL[dtype])
    np.testing.assert_allclose(out, P - Y, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert ref.logistic_cross_entropy(Z, Y, sw, out) == pytest.approx((L * sw).sum(),
                                                                      rel=RTOL[dtype])
    np.testing.assert_allclose(out, (P - Y) * sw[:, None], rtol=RTOL[dtype], atol=RTOL[dtype])
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_squared_error_is_half_the_squared_norm(rng, dtype):
    Z = rng.normal(size=(5, 2)).astype(dtype)
    Y = rng.normal(size=(5, 2)).astype(dtype)
    sw = rng.uniform(0, 2, 5).astype(dtype)
    D = Z.astype(np.float64) - Y
    out = np.empty_like(Z)
    assert ref.squared_error(Z, Y, None, out) == pytest.approx(0.5 * (D**2).sum(),
                                                               rel=RTOL[dtype])
    np.testing.assert_allclose(out, D, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert ref.squared_error(Z, Y, sw, out) == pytest.approx(
        0.5 * ((D**2).sum(axis=1) * sw).sum(), rel=RTOL[dtype])
    np.testing.assert_allclose(out, D * sw[:, None], rtol=RTOL[dtype], atol=RTOL[dtype])


def test_output_loss_dispatch_and_output_activation(rng):
    Z = rng.normal(size=(4, 3))
    y = np.array([0, 1, 2, 0])
    a, b = np.empty_like(Z), np.empty_like(Z)
    assert ref.output_loss("softmax", Z, y, None, a) == ref.softmax_cross_entropy(Z, y, None, b)
    np.testing.assert_array_equal(a, b)
    P = ref.output_activation("softmax", Z)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ref.output_activation("logistic", Z), g_of(Z, "logistic"))
    same = ref.output_activation("identity", Z)
    np.testing.assert_array_equal(same, Z)
    assert same is not Z  # a new array: callers may write into it
    with pytest.raises(ValueError, match="output.*'hinge'"):
        ref.output_loss("hinge", Z, y, None, a)
    with pytest.raises(ValueError, match="output.*'hinge'"):
        ref.output_activation("hinge", Z)


# ---------------------------------------------------------------------------
# backward through a dense layer; penalties
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_backward(rng, dtype):
    dZ = rng.normal(size=(6, 3)).astype(dtype)
    A = rng.normal(size=(6, 4)).astype(dtype)
    W = rng.normal(size=(4, 3)).astype(dtype)
    dW, db, dA = np.empty_like(W), np.empty(3, dtype), np.empty_like(A)
    ref.dense_backward(dZ, A, W, 0.25, dW, db, dA)
    d64, a64, w64 = (x.astype(np.float64) for x in (dZ, A, W))
    np.testing.assert_allclose(dW, 0.25 * a64.T @ d64, rtol=RTOL[dtype], atol=RTOL[dtype])
    np.testing.assert_allclose(db, 0.25 * d64.sum(axis=0), rtol=RTOL[dtype], atol=RTOL[dtype])
    np.testing.assert_allclose(dA, d64 @ w64.T, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert dW.dtype == db.dtype == dA.dtype == dtype
    dW2, db2 = np.empty_like(W), np.empty(3, dtype)
    ref.dense_backward(dZ, A, W, 0.25, dW2, db2)  # first layer: no dA wanted
    np.testing.assert_array_equal(dW2, dW)


def test_l2_and_l1_gradient_terms():
    W = np.array([[-2.0, 0.0], [0.5, 3.0]])
    dW = np.array([[1.0, 1.0], [1.0, 1.0]])
    ref.inplace_l2_grad(dW, W, 0.1)  # dW + 0.1 W
    np.testing.assert_allclose(dW, [[0.8, 1.0], [1.05, 1.3]], rtol=1e-15)
    ref.inplace_l1_subgradient(dW, W, 0.5)  # + 0.5 sign(W), sign(0) = 0
    np.testing.assert_allclose(dW, [[0.3, 1.0], [1.55, 1.8]], rtol=1e-15)


def test_fused_l2_decay_step():
    W = np.array([1.0, -2.0, 0.0])
    dW = np.array([0.5, 0.5, 0.5])
    ref.l2_decay_step(W, dW, 0.1, 0.2)  # W - 0.1 (dW + 0.2 W)
    np.testing.assert_allclose(W, [1.0 - 0.1 * 0.7, -2.0 - 0.1 * 0.1, -0.05], rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_l1_prox_step_soft_thresholds_to_exact_zeros(dtype):
    W = np.array([0.3, -0.3, 0.05, -0.05, 0.0, 1.0], dtype=dtype)
    ref.l1_prox_step(W, 0.1)
    np.testing.assert_allclose(W, [0.2, -0.2, 0.0, 0.0, 0.0, 0.9], rtol=RTOL[dtype])
    assert np.count_nonzero(W == 0) == 3 and W.dtype == dtype


def test_penalty_excludes_biases_and_divides_by_div():
    coefs = [np.array([[1.0, -2.0]]), np.array([[3.0], [0.0]])]
    # l2/2 * (1 + 4 + 9) + l1/2 * (1 + 2 + 3) = 0.5*14*2 + 0.5*6*4 = 14 + 12, over div 4
    assert ref.penalty(coefs, 2.0, 4.0, 4.0) == pytest.approx(26.0 / 4.0, rel=1e-15)
    assert ref.penalty(coefs, 0.0, 0.0, 4.0) == 0.0
    coefs32 = [W.astype(np.float32) for W in coefs]
    assert isinstance(ref.penalty(coefs32, 2.0, 0.0, 1.0), float)


# ---------------------------------------------------------------------------
# optimizers against their written-out formulas
# ---------------------------------------------------------------------------
N_STEPS = 5


def _gradients(rng, shape, dtype):
    return [rng.normal(size=shape).astype(dtype) for _ in range(N_STEPS)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_step_formula(rng, dtype):
    W = rng.normal(size=7).astype(dtype)
    w = W.astype(np.float64)
    for g in _gradients(rng, 7, dtype):
        ref.sgd_step(W, g, 0.1)
        w = w - 0.1 * g
    np.testing.assert_allclose(W, w, rtol=RTOL[dtype], atol=RTOL[dtype])
    assert W.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_momentum_step_formula(rng, dtype):
    lr, mu = 0.1, 0.9
    W, V = rng.normal(size=7).astype(dtype), np.zeros(7, dtype)
    w, v = W.astype(np.float64), np.zeros(7)
    for g in _gradients(rng, 7, dtype):
        ref.momentum_step(W, g, V, lr, mu)
        v = mu * v - lr * g
        w = w + v
    np.testing.assert_allclose(V, v, rtol=RTOL[dtype], atol=RTOL[dtype])
    np.testing.assert_allclose(W, w, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_nesterov_step_formula(rng, dtype):
    lr, mu = 0.1, 0.9
    W, V = rng.normal(size=7).astype(dtype), np.zeros(7, dtype)
    w, v = W.astype(np.float64), np.zeros(7)
    for g in _gradients(rng, 7, dtype):
        ref.nesterov_step(W, g, V, lr, mu)
        # scikit-learn's Nesterov: the velocity update, then a look-ahead step along it.
        v = mu * v - lr * g
        w = w + mu * v - lr * g
    np.testing.assert_allclose(V, v, rtol=RTOL[dtype], atol=RTOL[dtype])
    np.testing.assert_allclose(W, w, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_step_formula(rng, dtype):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    W, M, V = rng.normal(size=7).astype(dtype), np.zeros(7, dtype), np.zeros(7, dtype)
    w, m, v = W.astype(np.float64), np.zeros(7), np.zeros(7)
    for t, g in enumerate(_gradients(rng, 7, dtype), start=1):
        ref.adam_step(W, g, M, V, lr, b1, b2, eps, t)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        w = w - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
    for got, want in ((M, m), (V, v), (W, w)):
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype])


def test_optimizers_under_a_constant_gradient_follow_their_closed_forms():
    """Independent of the recurrences: closed forms after t steps of the same gradient g."""
    g = np.array([0.5, -2.0, 4.0])
    lr, mu, t = 0.1, 0.9, 6
    W, V = np.zeros(3), np.zeros(3)
    for _ in range(t):
        ref.momentum_step(W, g, V, lr, mu)
    # v_k = -lr g (1 - mu^k) / (1 - mu), and W is the sum of the v_k.
    total = sum((1 - mu**k) / (1 - mu) for k in range(1, t + 1))
    np.testing.assert_allclose(W, -lr * g * total, rtol=1e-12)
    W, M, V = np.zeros(3), np.zeros(3), np.zeros(3)
    for k in range(1, t + 1):
        ref.adam_step(W, g, M, V, lr, 0.9, 0.999, 1e-8, k)
    # With bias correction, m_k = (1 - b1^k) g and v_k = (1 - b2^k) g^2, so step k is
    # lr sign(g) s_k / (s_k + eps) with s_k = sqrt(1 - b2^k) |g|: lr sign(g) when eps -> 0.
    s = [np.sqrt(1 - 0.999**k) * np.abs(g) for k in range(1, t + 1)]
    np.testing.assert_allclose(W, -lr * np.sign(g) * sum(sk / (sk + 1e-8) for sk in s),
                               rtol=1e-12)


# ---------------------------------------------------------------------------
# counter-based dropout masks
# ---------------------------------------------------------------------------
def _hash_kept(seed, layer, step, e, keep):
    """The documented rule for element e, in Python integers: mix(k + (e+1) G) >> 40 < thr."""
    k = ref.dropout_key(seed, layer, step)
    bits = mix64_int(k + (e + 1) * 0x9E3779B97F4A7C15) >> 40
    return bits < int(keep * 2**24)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_mask_follows_the_documented_hash(dtype):
    seed, layer, step, row0, keep = 7, 2, 11, 3, 0.6
    M = np.empty((4, 5), dtype=dtype)
    assert ref.dropout_mask(seed, layer, step, row0, keep, M) is M
    expected = [[_hash_kept(seed, layer, step, (row0 + i) * 5 + j, keep) for j in range(5)]
                for i in range(4)]
    np.testing.assert_array_equal(M != 0, expected)
    assert set(np.unique(M)) <= {dtype(0), dtype(1 / keep)} and M.dtype == dtype
    assert ref.dropout_threshold(0.6) == int(0.6 * 2**24)


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9])
def test_dropout_keep_rate_within_5_sigma_of_binomial_mean(keep):
    n_rows, n_cols = 400, 250
    M = ref.dropout_mask(123, 1, 0, 0, keep, np.empty((n_rows, n_cols)))
    n = n_rows * n_cols
    kept = np.count_nonzero(M)
    assert abs(kept - n * keep) < 5 * np.sqrt(n * keep * (1 - keep))
    # Rows and columns each keep about the same share: no structure in the hash.
    assert abs(np.count_nonzero(M[:, 0]) - n_rows * keep) < 5 * np.sqrt(n_rows * keep * (1 - keep))


def test_dropout_mask_same_key_same_mask_other_key_other_mask():
    def mask(seed=5, layer=1, step=3, shape=(20, 30), row0=0, keep=0.5):
        return ref.dropout_mask(seed, layer, step, row0, keep, np.empty(shape))

    base = mask()
    np.testing.assert_array_equal(base, mask())
    for other in (mask(seed=6), mask(layer=2), mask(step=4)):
        assert np.mean(other != base) > 0.3  # independent masks differ in ~half the units


def test_dropout_mask_row_offset_matches_rows_of_the_full_mask():
    full = ref.dropout_mask(99, 1, 4, 0, 0.7, np.empty((10, 6)))
    part = ref.dropout_mask(99, 1, 4, 3, 0.7, np.empty((5, 6)))
    np.testing.assert_array_equal(part, full[3:8])


def test_dropout_keep_one_keeps_everything():
    np.testing.assert_array_equal(ref.dropout_mask(1, 1, 1, 0, 1.0, np.empty((3, 4))), 1.0)


def test_backend_identity():
    assert ref.BACKEND_NAME == "numpy"
    assert "reference" in ref.backend_info()["detail"].lower()

"""nf.MLP: parameter layout, initialization, prediction, loss, copies and pickling."""

import pickle

import numpy as np
import pytest

import nnopt_fast as nf
from tolerances import ACTIVATION_ATOL, KERNEL_RTOL
from nnopt_fast.kernels import reference as ref


def test_parameters_live_in_one_contiguous_buffer():
    net = nf.MLP([4, 3, 2], random_state=0)
    assert net.params.dtype == np.float32 and net.params.flags.c_contiguous
    assert net.n_params == net.params.size == 4 * 3 + 3 + 3 * 2 + 2
    assert net.n_layers == 2 and net.layer_sizes == (4, 3, 2)
    assert [W.shape for W in net.coefs_] == [(4, 3), (3, 2)]
    assert [b.shape for b in net.intercepts_] == [(3,), (2,)]
    # Layout W1, b1, W2, b2, each C-ordered, and the lists are views into params.
    expected = np.concatenate([a.ravel() for pair in zip(net.coefs_, net.intercepts_)
                               for a in pair])
    np.testing.assert_array_equal(net.params, expected)
    net.params[:] = np.arange(net.n_params)
    assert net.coefs_[0][0, 1] == 1 and net.intercepts_[0][0] == 12 and net.intercepts_[1][1] == 22


@pytest.mark.parametrize("activation, factor", [("tanh", 6.0), ("relu", 6.0), ("logistic", 2.0)])
def test_glorot_uniform_initialization_drawn_like_scikit_learn(activation, factor):
    net = nf.MLP([6, 5, 3], activation=activation, dtype=np.float64, random_state=42)
    # scikit-learn's order: per layer, the coefficients then the intercepts, from one
    # RandomState, uniform in +-sqrt(factor / (fan_in + fan_out)).
    rs = np.random.RandomState(42)
    for W, b in zip(net.coefs_, net.intercepts_):
        bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
        np.testing.assert_array_equal(W, rs.uniform(-bound, bound, W.shape))
        np.testing.assert_array_equal(b, rs.uniform(-bound, bound, b.shape))
        assert np.abs(W).max() <= bound


def test_same_random_state_same_weights():
    a = nf.MLP([6, 5, 3], random_state=1)
    np.testing.assert_array_equal(a.params, nf.MLP([6, 5, 3], random_state=1).params)
    assert not np.array_equal(a.params, nf.MLP([6, 5, 3], random_state=2).params)
    before = a.params.copy()
    a.initialize(1)
    np.testing.assert_array_equal(a.params, before)


def test_from_weights_copies_and_infers_the_dtype(rng):
    coefs = [rng.normal(size=(3, 4)), rng.normal(size=(4, 2))]
    intercepts = [rng.normal(size=4), rng.normal(size=2)]
    net = nf.MLP.from_weights(coefs, intercepts, activation="relu", output="logistic")
    assert net.dtype == np.float64 and net.layer_sizes == (3, 4, 2)
    assert (net.activation, net.output) == ("relu", "logistic")
    for W, Wn in zip(coefs, net.coefs_):
        np.testing.assert_array_equal(W, Wn)
        assert not np.shares_memory(W, Wn)
    as32 = nf.MLP.from_weights([c.astype(np.float32) for c in coefs], intercepts)
    assert as32.dtype == np.float32
    from_ints = nf.MLP.from_weights([np.ones((3, 4), int), np.ones((4, 2), int)],
                                    [np.zeros(4), np.zeros(2)])
    assert from_ints.dtype == np.float64
    lists = nf.MLP.from_weights([W.tolist() for W in coefs], [b.tolist() for b in intercepts])
    np.testing.assert_array_equal(lists.params, net.params)


def test_forward_predict_and_predict_proba_softmax(rng):
    net = nf.MLP([4, 6, 3], dtype=np.float64, random_state=0)
    X = rng.normal(size=(10, 4))
    H = np.tanh(X @ net.coefs_[0] + net.intercepts_[0])
    Z = H @ net.coefs_[1] + net.intercepts_[1]
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(net.forward(X), P, rtol=1e-12)
    np.testing.assert_allclose(net.predict_proba(X), P, rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), P.argmax(axis=1))
    assert net.predict(X).shape == (10,)


def test_logistic_output_predicts_zero_one_labels(rng):
    net = nf.MLP([4, 3], output="logistic", dtype=np.float64, random_state=0)
    X = rng.normal(size=(20, 4))
    P = net.predict_proba(X)
    np.testing.assert_allclose(P, 1 / (1 + np.exp(-(X @ net.coefs_[0] + net.intercepts_[0]))))
    np.testing.assert_array_equal(net.predict(X), (P > 0.5).astype(int))
    one = nf.MLP([4, 1], output="logistic", random_state=0)
    assert one.predict(X).shape == (20,)


def test_identity_output_predicts_values_and_has_no_probabilities(rng):
    X = rng.normal(size=(8, 4))
    one = nf.MLP([4, 5, 1], output="identity", random_state=0)
    two = nf.MLP([4, 5, 2], output="identity", random_state=0)
    assert one.predict(X).shape == (8,) and two.predict(X).shape == (8, 2)
    with pytest.raises(ValueError, match="predict_proba needs a softmax or logistic output"):
        one.predict_proba(X)


@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
def test_loss_is_the_tutorials_cost(rng, output):
    net = nf.MLP([4, 5, 3], output=output, dtype=np.float64, random_state=0)
    X = rng.normal(size=(12, 4))
    y = {"softmax": rng.integers(0, 3, 12), "logistic": rng.integers(0, 2, (12, 3)),
         "identity": rng.normal(size=(12, 3))}[output]
    F = net.forward(X)
    if output == "softmax":
        L = -np.log(F[np.arange(12), y])
    elif output == "logistic":
        L = -(y * np.log(F) + (1 - y) * np.log(1 - F)).sum(axis=1)
    else:
        L = 0.5 * ((F - y) ** 2).sum(axis=1)
    sq = sum((W**2).sum() for W in net.coefs_)
    ab = sum(np.abs(W).sum() for W in net.coefs_)
    # J = mean L + l2/(2m) sum W^2 + l1/(2m) sum |W|, m = 12; biases are not penalized.
    assert net.loss(X, y) == pytest.approx(L.mean(), rel=1e-12)
    assert net.loss(X, y, l2=0.6, l1=0.2) == pytest.approx(
        L.mean() + 0.6 / 24 * sq + 0.2 / 24 * ab, rel=1e-12)
    sw = rng.uniform(0, 2, 12)
    assert net.loss(X, y, sample_weight=sw) == pytest.approx((L * sw).sum() / sw.sum(),
                                                             rel=1e-12)


def test_float32_model_keeps_float32():
    net = nf.MLP([3, 2], random_state=0)
    X = np.ones((4, 3))
    assert net.forward(X).dtype == np.float32
    assert isinstance(net.loss(X, [0, 1, 0, 1]), float)


def test_copy_is_independent(rng):
    net = nf.MLP([3, 4, 2], activation="relu", output="logistic", random_state=0)
    twin = net.copy()
    assert (twin.activation, twin.output, twin.dtype) == ("relu", "logistic", net.dtype)
    np.testing.assert_array_equal(twin.params, net.params)
    twin.params[:] = 0
    assert np.any(net.params != 0)


def test_set_weights_checks_and_copies(rng):
    net = nf.MLP([3, 2], dtype=np.float64, random_state=0)
    W, b = rng.normal(size=(3, 2)), rng.normal(size=2)
    net.set_weights([W], [b])
    np.testing.assert_array_equal(net.coefs_[0], W)
    with pytest.raises(ValueError, match="expected 1 coefs and intercepts"):
        net.set_weights([W, W], [b, b])
    with pytest.raises(ValueError, match=r"coefs\[0\] has shape \(2, 2\)"):
        net.set_weights([W[:2]], [b])
    with pytest.raises(ValueError, match=r"intercepts\[0\] has shape \(3,\)"):
        net.set_weights([W], [np.zeros(3)])


def test_pickle_round_trip(rng):
    net = nf.MLP([3, 4, 2], activation="logistic", output="softmax", dtype=np.float64,
                 random_state=0)
    X = rng.normal(size=(5, 3))
    back = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    # The restored views still point into the restored buffer.
    back.params[:] = 0
    assert np.all(back.coefs_[0] == 0)


def test_repr():
    assert repr(nf.MLP([3, 4, 2], random_state=0)) == (
        "MLP([3, 4, 2], activation='tanh', output='softmax', dtype=float32)")


def test_prediction_uses_no_dropout_and_matches_the_kernels(rng):
    """Inference is the plain forward pass of the reference kernels (no dropout mask),
    computed by the compiled forward pass: equal up to the kernels' rounding."""
    net = nf.MLP([4, 5, 3], activation="relu", dtype=np.float64, random_state=0)
    X = rng.normal(size=(6, 4))
    H = ref.dense_forward(X, net.coefs_[0], net.intercepts_[0], "relu", np.empty((6, 5)))
    Z = ref.dense_forward(H, net.coefs_[1], net.intercepts_[1], "identity", np.empty((6, 3)))
    np.testing.assert_allclose(net.forward(X), ref.output_activation("softmax", Z),
                               rtol=KERNEL_RTOL[np.dtype(np.float64)], atol=0)


@pytest.mark.parametrize("backend", ["auto", "numba"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity", "exp"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "logistic", "identity"])
def test_compiled_inference_matches_the_reference(rng, dtype, output, activation, backend):
    from nnopt_fast.kernels.inference import Network

    # 700 rows: several blocks of the compiled forward pass, the last one partial.
    net = nf.MLP([9, 17, 6, 4], activation=activation, output=output, dtype=dtype,
                 random_state=1)
    X = rng.normal(size=(700, 9)).astype(dtype)
    Z = np.empty((700, 4), dtype)
    ref.forward(net.coefs_, net.intercepts_, activation, X, Z)
    # "auto": the model's own forward pass; "numba": that backend's compiled pass.
    compiled = net._network() if backend == "auto" else Network(
        net.coefs_, net.intercepts_, activation, output, backend=backend)
    assert compiled._net is not None  # the compiled pass, not the reference fallback
    tol = KERNEL_RTOL[np.dtype(dtype)] + (
        ACTIVATION_ATOL[np.dtype(dtype)] * 20 if activation in ("tanh", "logistic") else 0.0)
    for apply_output, want in ((False, Z), (True, ref.output_activation(output, Z))):
        got = compiled(X, apply_output)
        assert got.dtype == np.dtype(dtype)
        scale = 1.0 + np.abs(want) if output == "exp" and apply_output else 1.0 + np.abs(Z)
        assert np.all(np.abs(got - want) <= tol * scale)
    np.testing.assert_array_equal(net.forward(X), net._network()(X))


def test_compiled_inference_rejects_nan_rows_anywhere(rng):
    net = nf.MLP([3, 4, 2], random_state=0)
    X = rng.normal(size=(600, 3)).astype(np.float32)
    X[517, 1] = np.nan  # in the third block
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.predict(X)
    X[517, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.forward(X)

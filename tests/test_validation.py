"""Bad input gets a clear error naming the argument; accepted inputs are never modified."""

import numpy as np
import pytest

import nnopt_fast as nf

N_IN, N_OUT = 5, 3


@pytest.fixture
def data(rng):
    X = rng.normal(size=(40, N_IN))
    y = rng.integers(0, N_OUT, 40)
    return X, y


@pytest.fixture
def net():
    return nf.MLP([N_IN, 4, N_OUT], dtype=np.float64, random_state=0)


def bad_X_cases(rng):
    nan, inf = rng.normal(size=(40, N_IN)), rng.normal(size=(40, N_IN))
    nan[3, 2] = np.nan
    inf[0, 0] = -np.inf
    return [
        (rng.normal(size=40), ValueError, "X must be 2-D"),
        (rng.normal(size=(40, N_IN, 1)), ValueError, "X must be 2-D"),
        (np.full((40, N_IN), "a"), TypeError, "X must be numeric"),
        ([[1.0, 2.0], [3.0]], TypeError, "X must be"),
        (nan, ValueError, "X contains NaN or infinity"),
        (inf, ValueError, "X contains NaN or infinity"),
        (rng.normal(size=(40, N_IN + 1)), ValueError,
         "X has 6 features, but the model expects 5"),
    ]


# ---------------------------------------------------------------------------
# X, y and friends
# ---------------------------------------------------------------------------
def test_bad_X_is_rejected_by_every_public_function(rng, net, data):
    _, y = data
    before = net.params.copy()
    for X, exc, msg in bad_X_cases(rng):
        for call in (lambda: nf.train(net, X, y, backend="numpy"),
                     lambda: net.predict(X),
                     lambda: net.predict_proba(X),
                     lambda: net.forward(X),
                     lambda: net.loss(X, y)):
            with pytest.raises(exc, match=msg):
                call()
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("y, msg", [
    (np.zeros(39, dtype=int), "y has 39 samples but X has 40"),
    (np.zeros((40, 2), dtype=int), "y must be 1-D"),
    (np.full(40, -1), r"y must hold class labels in 0\.\.2, got values in -1\.\.-1"),
    (np.arange(40) % 4, r"y must hold class labels in 0\.\.2, got values in 0\.\.3"),
    (np.full(40, 0.5), "y must hold integer class labels"),
    (np.full(40, np.nan), "y must hold integer class labels"),
])
def test_bad_class_labels(net, data, y, msg):
    X, _ = data
    with pytest.raises(ValueError, match=msg):
        nf.train(net, X, y, backend="numpy")
    with pytest.raises(ValueError, match=msg):
        net.loss(X, y)


def test_string_labels_are_rejected_as_a_type_error(net, data):
    X, _ = data
    with pytest.raises(TypeError, match="y must hold integer class labels"):
        nf.train(net, X, np.array(["a", "b"] * 20), backend="numpy")


def test_float_labels_that_are_integers_are_accepted(net, data):
    X, y = data
    assert net.loss(X, y.astype(np.float64)) == net.loss(X, y)


@pytest.mark.parametrize("output, y, msg", [
    ("logistic", np.full((40, N_OUT), 2), "y must hold 0/1 targets"),
    ("logistic", np.zeros((40, N_OUT + 1)),
     r"y must have shape \(n_samples,\) or \(n_samples, 3\)"),
    ("identity", np.full((40, N_OUT), np.inf), "y contains NaN or infinity"),
    ("identity", np.zeros(41), "y has 41 samples but X has 40"),
])
def test_bad_targets_for_logistic_and_identity_outputs(data, output, y, msg):
    X, _ = data
    net = nf.MLP([N_IN, N_OUT], output=output)
    with pytest.raises(ValueError, match=msg):
        nf.train(net, X, y, backend="numpy")
    with pytest.raises(ValueError, match=msg):
        net.loss(X, y)


def test_bad_sample_weight(net, data):
    X, y = data
    with pytest.raises(ValueError, match="sample_weight must be finite and non-negative"):
        nf.train(net, X, y, sample_weight=-np.ones(40), backend="numpy")
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(40,\)"):
        net.loss(X, y, sample_weight=np.ones(3))


def test_empty_X(net):
    with pytest.raises(ValueError, match="X must have at least one sample"):
        nf.train(net, np.zeros((0, N_IN)), np.zeros(0, dtype=int), backend="numpy")
    with pytest.raises(ValueError, match="X must have at least one sample"):
        net.loss(np.zeros((0, N_IN)), np.zeros(0, dtype=int))


def test_validation_data_is_checked_and_named(net, data):
    X, y = data
    with pytest.raises(ValueError, match="X_val and y_val must be given together"):
        nf.train(net, X, y, X_val=X, backend="numpy")
    with pytest.raises(ValueError, match="X_val has 4 features"):
        nf.train(net, X, y, X_val=X[:, :4], y_val=y, backend="numpy")
    with pytest.raises(ValueError, match="y_val has 10 samples but X has 40"):
        nf.train(net, X, y, X_val=X, y_val=y[:10], backend="numpy")
    with pytest.raises(ValueError, match="y_val must hold class labels"):
        nf.train(net, X, y, X_val=X, y_val=y + 5, backend="numpy")


# ---------------------------------------------------------------------------
# hyper-parameters
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"lr": 0.0}, ValueError, r"lr must be > 0"),
    ({"lr": -0.1}, ValueError, r"lr must be > 0"),
    ({"lr": float("nan")}, ValueError, "lr must be finite"),
    ({"lr": "0.1"}, TypeError, "lr must be a real number"),
    ({"dropout": 1.0}, ValueError, r"dropout must be < 1"),
    ({"dropout": -0.1}, ValueError, r"dropout must be >= 0"),
    ({"dropout": [0.1, 0.2]}, ValueError, "dropout must be a float or one value per hidden"),
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
    ({"l2": -1.0}, ValueError, "l2 must be >= 0"),
    ({"l1": -1e-3}, ValueError, "l1 must be >= 0"),
    ({"epochs": 0}, ValueError, "epochs must be >= 1"),
    ({"epochs": 1.0}, TypeError, "epochs must be an integer"),
    ({"epochs": True}, TypeError, "epochs must be an integer"),
    ({"momentum": 1.5}, ValueError, "momentum must be <= 1"),
    ({"optimizer": "rmsprop"}, ValueError, r"optimizer must be one of .*'rmsprop'"),
    ({"l1_method": "lasso"}, ValueError, r"l1_method must be one of .*'lasso'"),
    ({"backend": "cuda"}, ValueError, r"backend must be one of .*'cuda'"),
    ({"n_threads": 0}, ValueError, "n_threads must be"),
    ({"callbacks": [1]}, TypeError, "callbacks must be a list of callables"),
])
def test_bad_hyper_parameters_name_the_argument(net, data, kwargs, exc, msg):
    X, y = data
    kwargs = {"backend": "numpy", **kwargs}
    before = net.params.copy()
    with pytest.raises(exc, match=msg):
        nf.train(net, X, y, **kwargs)
    np.testing.assert_array_equal(net.params, before)


def test_train_needs_an_mlp(data):
    X, y = data
    with pytest.raises(TypeError, match="net must be an nnopt_fast.MLP"):
        nf.train("not a net", X, y)


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"activation": "swish"}, ValueError, r"activation must be one of .*'swish'"),
    ({"output": "hinge"}, ValueError, r"output must be one of .*'hinge'"),
    ({"dtype": np.float16}, TypeError, "dtype must be float32 or float64"),
    ({"dtype": "not a dtype"}, TypeError, "dtype must be float32 or float64"),
])
def test_bad_model_options(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        nf.MLP([N_IN, N_OUT], **kwargs)


@pytest.mark.parametrize("sizes, exc, msg", [
    ([N_IN], ValueError, "layer_sizes needs at least"),
    ([N_IN, 0, N_OUT], ValueError, "layer_sizes entries must be >= 1"),
    ([N_IN, 2.5, N_OUT], TypeError, "layer_sizes entries must be an integer"),
    (5, TypeError, "layer_sizes must be a sequence"),
])
def test_bad_layer_sizes(sizes, exc, msg):
    with pytest.raises(exc, match=msg):
        nf.MLP(sizes)


def test_bad_from_weights(rng):
    W1, W2 = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    b1, b2 = np.zeros(4), np.zeros(2)
    with pytest.raises(ValueError, match=r"coefs\[1\] has shape \(3, 2\)"):
        nf.MLP.from_weights([W1, W2[:3]], [b1, b2])
    with pytest.raises(ValueError, match=r"intercepts\[0\] has shape \(3,\)"):
        nf.MLP.from_weights([W1, W2], [b1[:3], b2])
    with pytest.raises(ValueError, match="same length"):
        nf.MLP.from_weights([W1, W2], [b1])
    W_nan = W2.copy()
    W_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"coefs\[1\] or intercepts\[1\] contains NaN"):
        nf.MLP.from_weights([W1, W_nan], [b1, b2])
    with pytest.raises(ValueError, match="activation must be one of"):
        nf.MLP.from_weights([W1, W2], [b1, b2], activation="gelu")
    with pytest.raises(ValueError, match="output must be one of"):
        nf.MLP.from_weights([W1, W2], [b1, b2], output="svm")


def test_bad_loss_penalties(net, data):
    X, y = data
    with pytest.raises(ValueError, match="l2 must be >= 0"):
        net.loss(X, y, l2=-1.0)
    with pytest.raises(ValueError, match="l1 must be >= 0"):
        net.loss(X, y, l1=-1.0)


# ---------------------------------------------------------------------------
# accepted inputs: any numeric dtype and memory layout, copied, never modified
# ---------------------------------------------------------------------------
def layouts(X):
    """The same values as float16, int, Fortran order, a strided view and a list."""
    Xi = np.rint(X * 4).astype(np.int32)
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = Xi
    return {
        "int": Xi,
        "float16": Xi.astype(np.float16),
        "fortran": np.asfortranarray(Xi.astype(np.float64)),
        "strided": wide[:, ::2],
        "list": Xi.tolist(),
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_numeric_dtype_or_layout_gives_the_same_results(rng, data, dtype):
    X, y = data
    reference = np.ascontiguousarray(np.rint(X * 4), dtype=dtype)
    base = nf.MLP([N_IN, 4, N_OUT], dtype=dtype, random_state=0)
    expected_proba = base.predict_proba(reference)
    expected_loss = base.loss(reference, y)
    trained = base.copy()
    nf.train(trained, reference, y, epochs=2, random_state=0, backend="numpy")
    for name, Xv in layouts(X).items():
        np.testing.assert_array_equal(base.predict_proba(Xv), expected_proba, err_msg=name)
        assert base.predict_proba(Xv).dtype == dtype
        assert base.loss(Xv, y) == expected_loss, name
        other = base.copy()
        nf.train(other, Xv, y, epochs=2, random_state=0, backend="numpy")
        np.testing.assert_array_equal(other.params, trained.params, err_msg=name)


def frozen(*arrays):
    """Read-only copies, so that any write raises, plus pristine copies to compare with."""
    out = []
    for a in arrays:
        a = np.array(a)
        a.setflags(write=False)
        out.append(a)
    return out, [a.copy() for a in out]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
def test_inputs_are_unchanged_after_every_public_call(rng, dtype, output):
    X = rng.normal(size=(30, N_IN))
    if output == "softmax":
        y = rng.integers(0, N_OUT, 30)
    elif output == "logistic":
        y = rng.integers(0, 2, (30, N_OUT)).astype(np.float64)
    else:
        y = rng.normal(size=(30, N_OUT))
    sw = rng.uniform(0.5, 1.5, 30)
    coefs = [rng.normal(size=(N_IN, 4)), rng.normal(size=(4, N_OUT))]
    intercepts = [rng.normal(size=4), rng.normal(size=N_OUT)]
    (Xf, yf, swf, *weights), pristine = frozen(X, y, sw, *coefs, *intercepts)
    sizes = [N_IN, 4, N_OUT]
    net = nf.MLP(sizes, output=output, dtype=dtype)
    assert sizes == [N_IN, 4, N_OUT]
    net = nf.MLP.from_weights(weights[:2], weights[2:], output=output, dtype=dtype)
    net.predict(Xf)
    net.forward(Xf)
    if output != "identity":
        net.predict_proba(Xf)
    net.loss(Xf, yf, l2=0.1, l1=0.1, sample_weight=swf)
    nf.train(net, Xf, yf, epochs=2, batch_size=8, l2=0.1, dropout=0.2, sample_weight=swf,
             X_val=Xf, y_val=yf, backend="numpy")
    # The model owns copies: training changed its weights, not the arrays it was built from.
    assert not np.array_equal(net.coefs_[0], weights[0])
    for after, before in zip((Xf, yf, swf, *weights), pristine):
        np.testing.assert_array_equal(after, before)

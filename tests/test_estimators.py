"""MLPClassifier / MLPRegressor: ecosystem, added features (dropout, L1, threads), bad input."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import nnopt_fast as nf
from nnopt_fast import MLPClassifier, MLPRegressor
from nnopt_fast.estimators import _n_threads_default, _thread_budget

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _blobs(rng, n=240, d=5, k=3):
    centers = rng.normal(scale=3.0, size=(k, d))
    y = rng.integers(0, k, size=n)
    return centers[y] + rng.normal(size=(n, d)), y


def _small(Est=MLPClassifier, **kw):
    params = dict(hidden_layer_sizes=(16,), max_iter=30, batch_size=32, learning_rate_init=0.02,
                  random_state=0)
    params.update(kw)
    return Est(**params)


# ---------------------------------------------------------------------------- ecosystem
def test_pipeline_learns(rng):
    X, y = _blobs(rng)
    X = X * [1.0, 1e3, 1.0, 1e-2, 50.0] + 400.0
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", _small(max_iter=100))])
    with warnings.catch_warnings():
        warnings.simplefilter("error", nf.ScalingWarning)
        pipe.fit(X, y)
    assert pipe.score(X, y) > 0.95
    assert pipe.predict_proba(X).shape == (len(X), 3)


def test_grid_search_two_jobs_and_cross_val_score(rng):
    X, y = _blobs(rng, n=150)
    grid = GridSearchCV(make_pipeline(StandardScaler(), _small()),
                        {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=3, n_jobs=2)
    grid.fit(X, y)
    assert grid.best_params_["mlpclassifier__alpha"] in (1e-4, 1e-1)
    assert grid.best_score_ > 0.9
    scores = cross_val_score(_small(), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85


def test_n_threads_default_rule(monkeypatch):
    # Inside joblib workers each fit takes one thread; at top level, all cores (or
    # OMP_NUM_THREADS when set).
    inner = joblib.Parallel(n_jobs=2, backend="threading")(
        joblib.delayed(_n_threads_default)() for _ in range(2))
    assert inner == [1, 1]
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    from nnopt_fast.train.threads import available_cores

    assert _n_threads_default() == available_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _n_threads_default() == 1
    # A one-thread fit also holds the BLAS pools to one thread while it trains.
    from threadpoolctl import threadpool_info

    with _thread_budget(1):
        assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} == {1}


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trip(rng, tmp_path, dump):
    X, y = _blobs(rng)
    clf = _small(solver="sgd").fit(X, y.astype(str))
    if dump == "pickle":
        clone = pickle.loads(pickle.dumps(clf))
    else:
        joblib.dump(clf, tmp_path / "m.joblib")
        clone = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(clone.predict(X), clf.predict(X))
    # The optimizer state travels too: partial_fit continues identically.
    clf.partial_fit(X, y.astype(str))
    clone.partial_fit(X, y.astype(str))
    for a, b in zip(clone.coefs_, clf.coefs_):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------- data kinds
def test_float32_is_kept_and_int_becomes_float64(rng):
    X, y = _blobs(rng)
    clf32 = _small().fit(X.astype(np.float32), y)
    assert all(W.dtype == np.float32 for W in clf32.coefs_ + clf32.intercepts_)
    assert clf32.predict_proba(X.astype(np.float32)).dtype == np.float32
    reg = _small(MLPRegressor).fit(X.astype(np.float32), X[:, 0].astype(np.float32))
    assert reg.predict(X.astype(np.float32)).dtype == np.float32
    clf_int = _small().fit(np.rint(X).astype(np.int32), y)
    assert clf_int.coefs_[0].dtype == np.float64


@pytest.fixture
def no_densify(monkeypatch):
    """Any dense copy of a SciPy sparse matrix or array raises while the test runs."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("a sparse X was densified")

    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.csc_array):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("settings", [
    dict(solver="adam"), dict(solver="sgd", momentum=0.9), dict(solver="lbfgs", max_iter=15),
    dict(solver="adam", early_stopping=True, n_iter_no_change=50),
    dict(solver="sgd", dropout=0.2, l1=1e-3, backend="numba"),
    dict(solver="sgd", dropout=0.2, l1=1e-3, backend="cython"),
    dict(solver="adam", backend="numpy", max_iter=5),
])
def test_sparse_input_trains_as_dense_without_densifying(rng, fmt, settings, no_densify):
    X, y = _blobs(rng)
    X[np.abs(X) < 1.0] = 0.0
    Xs = sp.csr_matrix(X).asformat(fmt)
    dense = _small(**settings).fit(X, y)
    sparse = _small(**settings).fit(Xs, y)
    assert sparse.n_iter_ == dense.n_iter_
    # The first layer sums only the non-zeros, in another order: the same weights up to
    # rounding (float64).
    for a, b in zip(sparse.coefs_ + sparse.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse.predict_proba(Xs), dense.predict_proba(X),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(sparse.predict(Xs), dense.predict(X))
    assert sparse.score(Xs, y) == dense.score(X, y)


def test_sparse_regressor_and_partial_fit(rng, no_densify):
    X, y = _blobs(rng)
    X[np.abs(X) < 1.0] = 0.0
    Xs = sp.csr_matrix(X)
    target = X[:, 0] - 0.5 * X[:, 1]
    dense = _small(MLPRegressor).fit(X, target)
    sparse = _small(MLPRegressor).fit(Xs, target)
    np.testing.assert_allclose(sparse.predict(Xs), dense.predict(X), rtol=1e-10, atol=1e-12)
    streamed = _small()
    for rows in np.array_split(np.arange(len(y)), 4):
        streamed.partial_fit(Xs[rows], y[rows], classes=np.unique(y))
        _small().partial_fit(X[rows], y[rows], classes=np.unique(y))
    assert np.isfinite(streamed.predict_proba(Xs)).all()


def test_sparse_column_scales_are_the_dense_ones(rng):
    from nnopt_fast.estimators._scaling import _column_moments, scaling_report

    X = rng.normal(size=(300, 6)) * np.array([1.0, 1e4, 1.0, 3.0, 1.0, 1.0])
    X[np.abs(X) < 0.8] = 0.0
    X[:, 4] = 0.0  # an all-zero column
    for a, b in zip(_column_moments(sp.csr_matrix(X)), _column_moments(X)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert scaling_report(sp.csr_matrix(X)) == scaling_report(X) is not None


def test_sparse_float32_stays_float32(rng, no_densify):
    X, y = _blobs(rng)
    X[np.abs(X) < 1.0] = 0.0
    clf = _small().fit(sp.csr_matrix(X.astype(np.float32)), y)
    assert all(W.dtype == np.float32 for W in clf.coefs_)
    assert clf.predict_proba(sp.csr_matrix(X.astype(np.float32))).dtype == np.float32


def test_string_and_binary_labels(rng):
    X, y = _blobs(rng, k=2)
    labels = np.array(["cat", "dog"])[y]
    clf = _small().fit(X, labels)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    assert list(clf.classes_) == ["cat", "dog"]
    assert set(clf.predict(X)) <= {"cat", "dog"}
    assert clf.score(X, labels) > 0.95
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(P))


def test_multiclass_uses_softmax(rng):
    X, y = _blobs(rng, k=4)
    clf = _small(max_iter=60).fit(X, y + 100)
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 4
    np.testing.assert_array_equal(clf.classes_, [100, 101, 102, 103])
    assert clf.score(X, y + 100) > 0.95


def test_multilabel_indicator(rng):
    X = rng.normal(size=(200, 4))
    Y = (X[:, :3] > 0).astype(int)
    clf = _small(max_iter=100).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    pred = clf.predict(X)
    assert pred.shape == (200, 3)
    assert (pred == Y).mean() > 0.9
    assert clf.predict_proba(X).shape == (200, 3)


def test_regressor_multi_output(rng):
    X = rng.normal(size=(200, 3))
    Y = np.column_stack([X[:, 0] - X[:, 1], 0.5 * X[:, 2]])
    reg = _small(MLPRegressor, max_iter=150, learning_rate_init=0.01).fit(X, Y)
    assert reg.predict(X).shape == (200, 2)
    assert reg.score(X, Y) > 0.9


def test_sample_weight_zero_equals_dropping_samples(rng):
    # Full batch, no shuffling: a weight-0 sample contributes nothing anywhere.
    X, y = _blobs(rng, n=60)
    sw = np.ones(60)
    sw[:10] = 0.0
    kw = dict(solver="sgd", batch_size="auto", shuffle=False, max_iter=5, alpha=0.01)
    a = _small(**kw).fit(X, y, sample_weight=sw)
    b = _small(**kw).fit(X[10:], y[10:])
    for Wa, Wb in zip(a.coefs_, b.coefs_):
        np.testing.assert_allclose(Wa, Wb, rtol=1e-12, atol=1e-14)


def test_a_minibatch_of_zero_weights_raises_value_error(rng):
    # Its mean loss is undefined (0 / 0): a clear error instead of a NaN or a skipped step.
    X, y = _blobs(rng, n=64)
    sw = np.ones(64)
    sw[16:32] = 0.0
    clf = _small(solver="sgd", batch_size=16, shuffle=False, max_iter=3)
    with pytest.raises(ValueError, match="sample_weight: in epoch 1"):
        clf.fit(X, y, sample_weight=sw)


# ---------------------------------------------------------------------------- additions
def test_dropout_is_seeded_per_layer_and_off_at_predict(rng):
    X, y = _blobs(rng)
    kw = dict(hidden_layer_sizes=(16, 8), solver="sgd", max_iter=5)
    base = _small(**kw).fit(X, y)
    drop = _small(dropout=0.3, **kw).fit(X, y)
    again = _small(dropout=(0.3, 0.3), **kw).fit(X, y)
    assert not np.allclose(drop.coefs_[0], base.coefs_[0])
    for a, b in zip(drop.coefs_, again.coefs_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(drop.predict_proba(X), drop.predict_proba(X))
    only_second = _small(dropout=(0.0, 0.3), **kw).fit(X, y)
    assert not np.allclose(only_second.coefs_[0], drop.coefs_[0])


def test_dropout_matches_the_reference_run_epoch(rng):
    # The estimator drives run_epoch; replaying the same epochs by hand reproduces it.
    from nnopt_fast.kernels import reference as ref
    from nnopt_fast.train import TrainState, make_config

    X, y = _blobs(rng, n=64)
    clf = _small(solver="sgd", momentum=0.0, dropout=0.25, shuffle=False, batch_size=16,
                 max_iter=2, learning_rate_init=0.1, alpha=0.0, backend="numpy",
                 activation="tanh")
    init = _small(solver="sgd", max_iter=1, activation="tanh").fit(X, y)
    net = nf.MLP.from_weights(init.coefs_, init.intercepts_, "tanh", "softmax")
    clf.set_params(warm_start=True).fit(X, y)  # cold start: the mask seed is drawn here
    step0 = clf._dropout_step  # mask keys continue from the previous fit's steps
    clf.coefs_ = [W.copy() for W in net.coefs_]
    clf.intercepts_ = [b.copy() for b in net.intercepts_]
    clf.fit(X, y)
    cfg = make_config(net, batch_size=16, n_samples=64, optimizer="sgd", l2=0.0,
                      penalty_div=0, dropout=0.25, seed=clf._dropout_seed)
    state = TrainState(net, cfg)
    state.step = step0
    perm = np.arange(64, dtype=np.int64)
    for _ in range(2):
        _, _, n_steps, _ = ref.run_epoch(cfg, state, X, y.astype(np.int64), None, perm, 0.1,
                                         state.step)
        state.step += n_steps
    for a, b in zip(clf.coefs_, net.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", ["proximal", "subgradient"])
def test_l1(rng, method):
    X, y = _blobs(rng)
    plain = _small(solver="sgd", max_iter=20).fit(X, y)
    sparse = _small(solver="sgd", max_iter=20, l1=2.0, l1_method=method).fit(X, y)
    zeros = sum(int((W == 0).sum()) for W in sparse.coefs_)
    l1_norm = sum(np.abs(W).sum() for W in sparse.coefs_)
    assert l1_norm < 0.8 * sum(np.abs(W).sum() for W in plain.coefs_)
    if method == "proximal":
        assert zeros > 0.2 * sum(W.size for W in sparse.coefs_)
    else:
        assert zeros == 0  # a subgradient step lands on exactly 0.0 only by accident
    assert sum(int((W == 0).sum()) for W in plain.coefs_) == 0


def test_l1_with_lbfgs_uses_the_subgradient(rng):
    X, y = _blobs(rng, n=100)
    a = _small(solver="lbfgs", max_iter=50).fit(X, y)
    b = _small(solver="lbfgs", max_iter=50, l1=1.0).fit(X, y)
    assert sum(np.abs(W).sum() for W in b.coefs_) < sum(np.abs(W).sum() for W in a.coefs_)
    with pytest.raises(ValueError, match="proximal"):
        _small(solver="lbfgs", l1=1.0, l1_method="proximal").fit(X, y)


def test_warm_start_from_user_coefs(rng):
    X, y = _blobs(rng)
    clf = _small(solver="sgd", max_iter=1).fit(X, y)
    clf.set_params(warm_start=True, learning_rate_init=1e-12)
    W = [np.full_like(W, 0.01) for W in clf.coefs_]
    b = [np.zeros_like(b) for b in clf.intercepts_]
    clf.coefs_, clf.intercepts_ = [w.copy() for w in W], [v.copy() for v in b]
    clf.fit(X, y)
    # A learning rate of 1e-12 barely moves the assigned weights.
    for got, start in zip(clf.coefs_, W):
        np.testing.assert_allclose(got, start, atol=1e-9)
    clf.coefs_ = [W[0][:2]] + W[1:]
    with pytest.raises(ValueError, match="coefs_ have shapes"):
        clf.fit(X, y)


def test_partial_fit(rng):
    X, y = _blobs(rng)
    clf = _small()
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    for chunk in np.array_split(np.arange(len(X)), 4):
        clf.partial_fit(X[chunk], y[chunk], classes=[0, 1, 2])
    assert clf.t_ == len(X) and clf.n_iter_ == 1 and len(clf.loss_curve_) == 4
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(X[:5], np.array([0, 1, 2, 3, 3]))
    assert not hasattr(_small(solver="lbfgs"), "partial_fit")
    reg = _small(MLPRegressor)
    for _ in range(3):
        reg.partial_fit(X, X[:, 0])
    assert reg.t_ == 3 * len(X)
    with pytest.raises(ValueError, match="early_stopping"):
        _small(MLPRegressor, early_stopping=True).partial_fit(X, X[:, 0])


def test_early_stopping_records_validation_loss(rng):
    X, y = _blobs(rng)
    clf = _small(early_stopping=True, max_iter=200, n_iter_no_change=3).fit(X, y)
    assert len(clf.validation_loss_curve_) == len(clf.validation_scores_) == clf.n_iter_
    assert clf.n_iter_ < 200
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.validation_loss_curve_[-1] < clf.validation_loss_curve_[0]
    assert _small().fit(X, y).validation_loss_curve_ is None


def test_divergence_in_the_first_epoch_leaves_a_new_estimator_unfitted(rng):
    X, y = _blobs(rng)
    X = X * 1e150
    clf = _small(MLPRegressor, solver="sgd", learning_rate_init=10.0, activation="relu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nf.ScalingWarning)
        with pytest.raises(nf.FitDivergenceError, match="left unfitted") as info:
            clf.fit(X, y * 1e150)
    assert isinstance(info.value, ValueError) and isinstance(info.value, nf.DivergenceError)
    assert info.value.epoch == 1
    with pytest.raises(NotFittedError):
        clf.predict(X)


# ---------------------------------------------------------------------------- scaling warning
def test_scaling_warning_once_with_the_fix(rng):
    X, y = _blobs(rng)
    X[:, 1] *= 1e4
    X[:, 2] += 5e3
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        _small(max_iter=2).fit(X, y)
    scaling = [w for w in rec if issubclass(w.category, nf.ScalingWarning)]
    assert len(scaling) == 1
    msg = str(scaling[0].message)
    assert "make_pipeline(StandardScaler(), MLPClassifier())" in msg
    assert "column 1" in msg and "column 2" in msg
    with warnings.catch_warnings():
        warnings.simplefilter("error", nf.ScalingWarning)
        _small(max_iter=2).fit(StandardScaler().fit_transform(X), y)
        # constant columns are ignored
        _small(max_iter=2).fit(np.column_stack([X[:, :1], np.full(len(X), 7.0)]) / 3.0, y)


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input(rng, bad):
    X, y = _blobs(rng, n=40)
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        _small().fit(Xb, y)
    yb = X[:, 0].copy()
    yb[4] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        _small(MLPRegressor).fit(X, yb)
    with pytest.raises(ValueError, match="NaN|infinity"):
        _small(max_iter=1).fit(X, y).predict(Xb)


@pytest.mark.parametrize(("params", "match"), [
    (dict(dropout=1.0), "dropout"),
    (dict(dropout=(0.1, 0.2)), "one value per hidden layer"),
    (dict(dropout=0.2, solver="lbfgs"), "dropout"),
    (dict(hidden_layer_sizes=(10, 0)), "hidden_layer_sizes must be > 0"),
    (dict(solver="newton"), "solver"),
    (dict(l1=-1.0), "l1"),
    (dict(backend="gpu"), "backend"),
    (dict(n_threads=0), "n_threads"),
])
def test_bad_parameters(rng, params, match):
    X, y = _blobs(rng, n=40)
    with pytest.raises(ValueError, match=match):
        _small(**params).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_single_class_is_fitted_as_scikit_learn_does(rng, solver):
    X, _ = _blobs(rng, n=40)
    clf = _small(solver=solver).fit(X, np.full(40, "only"))
    np.testing.assert_array_equal(clf.classes_, ["only"])
    np.testing.assert_array_equal(clf.predict(X), np.full(40, "only"))
    np.testing.assert_array_equal(clf.predict_proba(X), np.ones((40, 1)))
    assert clf.score(X, np.full(40, "only")) == 1.0
    if solver == "adam":
        part = _small().partial_fit(X, np.full(40, 7), classes=[7])
        np.testing.assert_array_equal(part.classes_, [7])
        np.testing.assert_array_equal(part.predict(X), np.full(40, 7))
        with pytest.raises(ValueError, match="not in `self.classes_`"):
            part.partial_fit(X, np.arange(40) % 2 + 7)


def test_bad_data(rng):
    X, y = _blobs(rng, n=40)
    clf = _small(max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])
    with pytest.raises(NotFittedError):
        _small().predict(X)
    with pytest.raises(ValueError, match="Unknown label type"):
        _small().fit(X, rng.normal(size=40))
    with pytest.raises(ValueError, match="non-negative targets"):
        _small(MLPRegressor, loss="poisson").fit(X, X[:, 0])


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_n_threads_minus_one_means_every_available_core(rng, solver):
    from nnopt_fast.train.threads import available_cores

    X, y = _blobs(rng)
    a = _small(solver=solver, n_threads=-1).fit(X, y)
    b = _small(solver=solver, n_threads=available_cores()).fit(X, y)
    for Wa, Wb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(Wa, Wb)

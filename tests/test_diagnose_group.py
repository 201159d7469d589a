"""The diagnosis tools train nnopt_fast's MLPs as one group: the same numbers as one fit per task."""

import warnings

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nnopt_fast as nf
from nnopt_fast.diagnosis import decomposition
from nnopt_fast.diagnosis._group import placement
from nnopt_fast.estimators._group import group_fit, groupable
from nnopt_fast.train.group import run_group

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def rng():
    return np.random.default_rng(20261201)


def _classes(rng, n, d=5, k=3):
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = np.array(["a", "b", "c"])[np.argmax(X[:, :k] + 0.3 * rng.normal(size=(n, k)), 1)]
    return X, y


def _regression(rng, n, d=4):
    X = rng.normal(size=(n, d))
    return X, np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)


def _clf(**kw):
    params = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.05, max_iter=4,
                  batch_size=16, random_state=0)
    return nf.MLPClassifier(**{**params, **kw})


def _reg(**kw):
    params = dict(hidden_layer_sizes=(8,), solver="adam", learning_rate_init=0.01,
                  max_iter=4, batch_size=16, random_state=0)
    return nf.MLPRegressor(**{**params, **kw})


def _same_bias_variance(a, b):
    np.testing.assert_array_equal(a.predictions, b.predictions)
    for name in ("expected_loss", "bias_squared", "variance", "variance_unbiased",
                 "variance_biased", "baseline", "bands", "intervals"):
        assert getattr(a, name) == getattr(b, name), name
    np.testing.assert_array_equal(a.resampled_terms, b.resampled_terms)
    np.testing.assert_array_equal(a.main_prediction, b.main_prediction)


ESTIMATORS = [
    ("0-1", lambda: _clf(dropout=0.2)),
    ("0-1", lambda: _clf(solver="adam", alpha=0.5, l1=0.01, l1_method="proximal")),
    ("0-1", lambda: make_pipeline(StandardScaler(), _clf(momentum=0.5))),
    ("mse", lambda: _reg(learning_rate="adaptive", solver="sgd", momentum=0.9)),
    ("mse", lambda: make_pipeline(StandardScaler(), _reg(alpha=1.0))),
]


@pytest.mark.parametrize("loss, make", ESTIMATORS)
def test_bias_variance_group_equals_one_fit_per_task(rng, loss, make):
    X, y = _classes(rng, 160) if loss == "0-1" else _regression(rng, 160)
    Xte, yte = X[120:], y[120:]
    est = make()
    assert groupable(est)
    kw = dict(n_rounds=6, loss=loss, random_state=3, return_predictions=True)
    grouped = nf.bias_variance(est, X[:120], y[:120], Xte, yte, n_jobs=2, **kw)
    each = nf.bias_variance(est, X[:120], y[:120], Xte, yte, n_jobs=1, group=False, **kw)
    _same_bias_variance(grouped, each)
    assert np.all(grouped.fit_times > 0)
    # Seeds kept (mlxtend's way): every round starts from the estimator's random_state.
    kept = nf.bias_variance(est, X[:120], y[:120], Xte, yte, seed_estimator=False, **kw)
    _same_bias_variance(kept, nf.bias_variance(est, X[:120], y[:120], Xte, yte,
                                               seed_estimator=False, group=False, **kw))


@pytest.mark.parametrize("param, values", [
    ("alpha", [1e-4, 1.0]),
    ("dropout", [0.0, 0.3]),
    ("hidden_layer_sizes", [(4,), (16, 8)]),
    ("learning_rate_init", [0.01, 0.2]),
])
def test_bias_variance_curve_group_equals_one_fit_per_task(rng, param, values):
    X, y = _classes(rng, 140)
    kw = dict(n_rounds=4, loss="0-1", random_state=0)
    a = nf.bias_variance_curve(_clf(), X[:100], y[:100], X[100:], y[100:], param, values,
                               **kw)
    b = nf.bias_variance_curve(_clf(), X[:100], y[:100], X[100:], y[100:], param, values,
                               group=False, **kw)
    for ra, rb in zip(a.results, b.results):
        assert (ra.expected_loss, ra.bias, ra.variance, ra.bands) == (
            rb.expected_loss, rb.bias, rb.variance, rb.bands)


def _same_curve(a, b):
    for name in ("train_scores", "validation_scores", "train_losses", "validation_losses"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.baseline_loss, a.baseline_score) == (b.baseline_loss, b.baseline_score)


@pytest.mark.parametrize("param, values", [
    ("alpha", [1e-5, 1e-2, 1.0]),
    ("l1", [0.0, 0.05]),
    ("dropout", [0.1, 0.4]),
    ("momentum", [0.0, 0.9]),
    ("random_state", [1, 2]),
    ("learning_rate_init", [0.02, 0.1]),
    ("mlpclassifier__alpha", [1e-4, 0.1]),
])
def test_validation_curve_group_equals_one_fit_per_task(rng, param, values):
    X, y = _classes(rng, 150)
    est = make_pipeline(StandardScaler(), _clf()) if "__" in param else _clf()
    kw = dict(cv=3, random_state=1)
    a = nf.validation_curve(est, X, y, param, values, n_jobs=-1, **kw)
    b = nf.validation_curve(est, X, y, param, values, group=False, **kw)
    _same_curve(a, b)
    assert np.all(a.fit_times > 0)


@pytest.mark.parametrize("make", [_clf, _reg])
def test_learning_curve_group_equals_one_fit_per_task(rng, make):
    X, y = _classes(rng, 150) if make is _clf else _regression(rng, 150)
    kw = dict(train_sizes=(0.3, 0.6, 1.0), cv=3, random_state=4)
    _same_curve(nf.learning_curve(make(), X, y, **kw),
                nf.learning_curve(make(), X, y, group=False, **kw))


def test_diagnose_group_equals_one_fit_per_task(rng):
    X, y = _classes(rng, 200)
    est = make_pipeline(StandardScaler(), _clf(hidden_layer_sizes=(32,), max_iter=20))
    kw = dict(n_rounds=3, random_state=0, alpha_range=[1e-4, 1.0], dropout_range=[0.2])
    a, b = nf.diagnose(est, X, y, **kw), nf.diagnose(est, X, y, group=False, **kw)
    assert (a.train_error, a.validation_error, a.verdict, a.suggested_params) == (
        b.train_error, b.validation_error, b.verdict, b.suggested_params)
    _same_bias_variance_terms = (a.decomposition.expected_loss, a.decomposition.variance)
    assert _same_bias_variance_terms == (b.decomposition.expected_loss,
                                         b.decomposition.variance)
    for name in a.validation_curves:
        _same_curve(a.validation_curves[name], b.validation_curves[name])


def test_the_same_numbers_whatever_the_threads_or_local_backend(rng):
    X, y = _classes(rng, 120)
    kw = dict(n_rounds=5, loss="0-1", random_state=7, return_predictions=True)
    runs = [nf.bias_variance(_clf(), X[:90], y[:90], X[90:], y[90:], n_jobs=n, **kw)
            for n in (1, 2, -1, None)]
    with parallel_backend("threading", n_jobs=2):
        runs.append(nf.bias_variance(_clf(), X[:90], y[:90], X[90:], y[90:], **kw))
    with parallel_backend("loky", n_jobs=2):
        runs.append(nf.bias_variance(_clf(), X[:90], y[:90], X[90:], y[90:], **kw))
    for r in runs[1:]:
        _same_bias_variance(r, runs[0])
    assert placement(1) == ("here", 1) and placement(None)[0] == "here"


def test_a_round_missing_a_class_and_a_diverging_fit_fall_back_to_fit(rng):
    X, y = _classes(rng, 60)
    y[:] = "a"
    y[:2] = "b"  # most bootstraps of 40 rows miss one of them: another output layer
    kw = dict(n_rounds=6, loss="0-1", random_state=0, return_predictions=True)
    _same_bias_variance(nf.bias_variance(_clf(), X[:40], y[:40], X[40:], y[40:], **kw),
                        nf.bias_variance(_clf(), X[:40], y[:40], X[40:], y[40:],
                                         group=False, **kw))
    Xr, yr = _regression(rng, 60)
    wild = _reg(solver="sgd", learning_rate_init=50.0, max_iter=20, momentum=0.0)
    errors = []
    for group in (True, False):
        with pytest.raises(nf.FitDivergenceError) as info:
            nf.bias_variance(wild, Xr * 100, yr * 1e3, Xr, yr, n_rounds=2, random_state=0,
                             group=group)
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def test_the_warnings_count_the_fits_alike(rng):
    X, y = _classes(rng, 100)
    seen = {}
    for group in (True, False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            nf.bias_variance(_clf(), X[:80], y[:80], X[80:], y[80:], n_rounds=4, loss="0-1",
                             random_state=0, group=group)
        seen[group] = sorted(str(w.message) for w in caught
                             if issubclass(w.category, ConvergenceWarning))
    assert seen[True] == seen[False] and seen[True][0].startswith("4 of 4 fits")


def test_which_estimators_group(rng):
    assert groupable(_clf()) and groupable(make_pipeline(StandardScaler(), _reg()))
    assert not groupable(_clf(solver="lbfgs"))
    assert not groupable(_clf(early_stopping=True))
    assert not groupable(_clf(class_weight="balanced"))
    from sklearn.neural_network import MLPClassifier

    assert not groupable(MLPClassifier())
    est = _clf()
    before = est.get_params()
    X, y = _classes(rng, 50)
    nf.bias_variance(est, X, y, X, y, n_rounds=2, loss="0-1", random_state=0)
    assert est.get_params() == before and not hasattr(est, "coefs_")
    with pytest.raises(TypeError, match="group must be True or False"):
        nf.bias_variance(est, X, y, X, y, group="yes")


def test_group_fit_equals_fit(rng):
    """The bridge itself: each member ends with the fitted attributes fit gives."""
    X, y = _classes(rng, 200)
    base = _clf(dropout=0.2, learning_rate="invscaling", max_iter=3)
    fits, alone, shared = [], [], {}
    draws = [rng.integers(0, 200, 200) for _ in range(3)] + [None]
    for rows in draws:
        fits.append(group_fit(clone(base), X, y, rows, shared))
        alone.append(clone(base).fit(X if rows is None else X[rows],
                                     y if rows is None else y[rows]))
    # X and y validated and held once (beside the parameter checks kept for the group).
    assert len([key for key in shared if key[0] != "params"]) == 1
    errors = run_group(fits[0].backend, [f.member for f in fits], 2)
    for f, err, a in zip(fits, errors, alone):
        g = f.finish(err)
        for W, V in zip(g.coefs_ + g.intercepts_, a.coefs_ + a.intercepts_):
            np.testing.assert_array_equal(W, V)
        for name in ("loss_curve_", "n_iter_", "t_", "best_loss_", "_no_improvement_count",
                     "_dropout_step", "_dropout_seed", "n_features_in_", "backend_"):
            assert getattr(g, name) == getattr(a, name), name
        np.testing.assert_array_equal(g.classes_, a.classes_)
        np.testing.assert_array_equal(g.predict_proba(X), a.predict_proba(X))


@pytest.mark.parametrize("make", [_clf, lambda: make_pipeline(StandardScaler(with_mean=False),
                                                               _clf(solver="adam"))])
def test_sparse_X_groups_without_densifying(rng, make):
    """A CSR training set stays sparse on the group path: the same numbers as one fit
    per task, and the members train on the CSR matrix itself."""
    import scipy.sparse

    X, y = _classes(rng, 160, d=12)
    X[np.abs(X) < 1.0] = 0.0
    Xs = scipy.sparse.csr_matrix(X)
    est = make()
    kw = dict(n_rounds=4, loss="0-1", random_state=5, return_predictions=True)
    grouped = nf.bias_variance(est, Xs[:120], y[:120], Xs[120:], y[120:], n_jobs=2, **kw)
    each = nf.bias_variance(est, Xs[:120], y[:120], Xs[120:], y[120:], n_jobs=1,
                            group=False, **kw)
    _same_bias_variance(grouped, each)
    fit = group_fit(clone(est), Xs, y, rng.integers(0, 160, 160), {})
    assert scipy.sparse.issparse(fit.data.X)


# ---------------------------------------------------------------------------
# the resampled terms behind bands and intervals
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["0-1", "mse", "mse-2d"])
def test_resampled_terms_equal_decompose_on_each_resample(rng, loss):
    if loss == "0-1":
        y = rng.choice(np.array(["x", "y", "z", "w"]), 300)
        P = np.where(rng.random((20, 300)) < 0.6, y, rng.choice(["x", "y", "z"], (20, 300)))
    else:
        shape = (300,) if loss == "mse" else (300, 2)
        y = rng.normal(size=shape)
        P = 5.0 + y + rng.normal(size=(20, *shape))
    terms = decomposition._resamples(P, y, loss[:3])
    assert terms.shape == (decomposition.N_RESAMPLES, 4)
    draws = np.random.default_rng(0).integers(0, 20, size=(decomposition.N_RESAMPLES, 20))
    for s in (0, 1, decomposition.N_RESAMPLES - 1):
        parts = decomposition.decompose(P[draws[s]], y, loss[:3])
        net = (parts["variance_unbiased"] - parts["variance_biased"] if loss == "0-1"
               else parts["variance"])
        want = [parts["expected_loss"], parts["bias_squared"], parts["variance"], net]
        # One matrix product for every resample instead of one decompose each: the same
        # sums in another order (float64 rounding).
        np.testing.assert_allclose(terms[s], want, rtol=1e-12, atol=1e-15)


def test_intervals(rng):
    X, y = _regression(rng, 100)
    r = nf.bias_variance(_reg(), X[:70], y[:70], X[70:], y[70:], n_rounds=8, random_state=0)
    for term in decomposition.TERMS:
        lo, hi = r.intervals[term]
        assert lo <= hi
        a, b = r.interval(term, 0.5)
        assert lo <= a <= b <= hi
    lo, hi = r.intervals["expected_loss"]
    assert lo <= r.expected_loss <= hi
    assert r.bands["bias"] == r.interval("bias", 0.8)
    with pytest.raises(ValueError, match="term"):
        r.interval("noise")
    with pytest.raises(ValueError, match="level"):
        r.interval("bias", 1.5)
    one = nf.bias_variance(_reg(), X[:70], y[:70], X[70:], y[70:], n_rounds=1, random_state=0)
    assert one.intervals == {} and np.isnan(one.interval("bias")).all()

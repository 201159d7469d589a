"""nf.MLPEnsemble: bagged MLPs trained as one group; scikit-learn's checks; its members."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import nnopt_fast as nf

# As the estimators' own checks (tests/test_estimator_checks.py): tiny data sets, a
# narrow layer, scikit-learn's max_iter=100.
FAST = dict(max_iter=100, hidden_layer_sizes=(20,))

ESTIMATORS = [
    nf.MLPEnsemble(nf.MLPClassifier(**FAST), n_estimators=3),
    nf.MLPEnsemble(nf.MLPRegressor(**FAST), n_estimators=3, bootstrap=False, max_samples=0.8),
    nf.MLPEnsemble(make_pipeline(StandardScaler(), nf.MLPClassifier(solver="sgd", **FAST)),
                   n_estimators=2),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.fixture
def data(rng):
    X = rng.standard_normal((200, 6)).astype(np.float32)
    y = np.array(["x", "y", "z"])[np.argmax(X[:, :3], axis=1)]
    return X, y


pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_each_member_is_its_own_fit_on_its_rows(data):
    X, y = data
    base = nf.MLPClassifier(solver="sgd", dropout=0.1, random_state=0, **FAST)
    ens = nf.MLPEnsemble(base, n_estimators=4, random_state=3, n_jobs=2).fit(X, y)
    assert is_classifier(ens) and len(ens.estimators_) == 4
    for est, rows in zip(ens.estimators_, ens.estimators_samples_):
        alone = clone(est).fit(X[rows], y[rows])  # its own parameters and seed
        for W, V in zip(est.coefs_ + est.intercepts_, alone.coefs_ + alone.intercepts_):
            np.testing.assert_array_equal(W, V)
    seeds = {est.random_state for est in ens.estimators_}
    assert len(seeds) == 4 and all(est.n_threads == 1 for est in ens.estimators_)
    P = ens.predict_proba(X)
    np.testing.assert_array_equal(P, np.mean([e.predict_proba(X).astype(np.float64)
                                              for e in ens.estimators_], axis=0))
    assert P.dtype == np.float64 and list(ens.classes_) == ["x", "y", "z"]
    np.testing.assert_array_equal(ens.predict(X), ens.classes_[P.argmax(1)])
    again = nf.MLPEnsemble(base, n_estimators=4, random_state=3, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), P)  # threads change nothing


def test_regression_members_average(rng):
    X = rng.standard_normal((150, 4))
    y = X[:, 0] - 2 * X[:, 1]
    net = nf.MLPRegressor(hidden_layer_sizes=(20,), learning_rate_init=0.01, max_iter=200,
                          random_state=0)
    ens = nf.MLPEnsemble(net, n_estimators=3, random_state=0).fit(X, y)
    assert is_regressor(ens) and not hasattr(ens, "predict_proba")
    np.testing.assert_allclose(ens.predict(X), np.mean([e.predict(X) for e in ens.estimators_],
                                                       axis=0))
    assert ens.score(X, y) > 0.7


def test_a_member_missing_a_class_and_other_estimators(data):
    X, y = data
    y = y.copy()
    y[:] = "x"
    y[:2] = "y"
    ens = nf.MLPEnsemble(nf.MLPClassifier(random_state=0, **FAST), n_estimators=5,
                         max_samples=20, random_state=0).fit(X, y)
    short = [e for e in ens.estimators_ if len(e.classes_) == 1]
    assert short  # members whose rows held one class: their own (single-class) fit
    P = ens.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    ridge = nf.MLPEnsemble(Ridge(), n_estimators=3, random_state=0).fit(X, X[:, 0])
    assert all(isinstance(e, Ridge) for e in ridge.estimators_)


def test_bad_parameters(data):
    X, y = data
    with pytest.raises(ValueError, match="max_samples=500 is more"):
        nf.MLPEnsemble(max_samples=500).fit(X, y)
    with pytest.raises(ValueError, match="n_estimators"):
        nf.MLPEnsemble(n_estimators=0).fit(X, y)

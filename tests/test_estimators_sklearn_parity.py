"""nnopt_fast's MLPClassifier / MLPRegressor against scikit-learn's, the oracle, in float64."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

import nnopt_fast as nf

#: Issue 5's bounds on ``max|ours - sklearn| / max|sklearn|`` per weight array after 3 epochs.
#: Both sides do the same float64 arithmetic up to summation order (BLAS blocking, a
#: backend's own GEMM, ``(A^T d + alpha W) / S`` vs ``A^T d / S + (alpha / S) W``): ~1e-15
#: per step, ~1e-14 after the ~20 steps here. A wrong batch, sign, penalty scaling or
#: learning-rate schedule is off by 1e-3 or more.
RTOL_STOCHASTIC = 1e-8
#: L-BFGS adds line searches whose accept/reject decisions amplify rounding; held to the
#: same 1e-8 as the stochastic solvers (observed ~1e-15 here).
RTOL_LBFGS = 1e-8

BACKENDS = ["auto"] + [name for name, info in nf.backends().items() if info["available"]]

SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.0),
    "sgd-invscaling": dict(solver="sgd", momentum=0.0, learning_rate="invscaling",
                           power_t=0.3),
    "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "adam": dict(solver="adam"),
    "lbfgs": dict(solver="lbfgs"),
}


def _rel_err(ours, theirs):
    return max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(ours, theirs))


def _data(rng, task, n=103, d=6):
    X = rng.normal(size=(n, d))
    if task == "binary":
        y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no")
    elif task == "multiclass":
        y = np.argmax(X[:, :4] @ rng.normal(size=(4, 4)), axis=1) + 10
    elif task == "multilabel":
        y = (X[:, :3] + 0.3 * rng.normal(size=(n, 3)) > 0).astype(int)
    else:
        y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    return X, y


def _pair(task, params):
    Sk = SkRegressor if task == "regression" else SkClassifier
    Nf = nf.MLPRegressor if task == "regression" else nf.MLPClassifier
    return Sk(**params), Nf


def _fit_quiet(est, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kw)


# lbfgs evaluates its loss and gradient with the reference kernels whatever the backend,
# so it is run once per task rather than once per backend.
WARM_CASES = [(task, solver, backend)
              for task in ("binary", "multiclass", "regression")
              for solver in SOLVERS
              for backend in (BACKENDS[:1] if solver == "lbfgs" else BACKENDS)]


@pytest.mark.parametrize(("task", "solver", "backend"), WARM_CASES)
def test_warm_start_parity(rng, task, solver, backend):
    """Same starting weights, shuffle off, 3 epochs: the same weights as scikit-learn."""
    X, y = _data(rng, task)
    params = dict(hidden_layer_sizes=(9, 5), activation="tanh", alpha=0.01, batch_size=20,
                  learning_rate_init=0.05, warm_start=True, shuffle=False,
                  early_stopping=False, tol=1e-12, random_state=0, **SOLVERS[solver])
    sk, Nf = _pair(task, params)
    ours = Nf(backend=backend, **params)
    # One epoch each sets up labels and shapes; then both start from the same new weights.
    _fit_quiet(sk.set_params(max_iter=1), X, y)
    _fit_quiet(ours.set_params(max_iter=1), X, y)
    W0 = [rng.uniform(-0.5, 0.5, W.shape) for W in sk.coefs_]
    b0 = [rng.uniform(-0.5, 0.5, b.shape) for b in sk.intercepts_]
    sk.coefs_, sk.intercepts_ = [W.copy() for W in W0], [b.copy() for b in b0]
    ours.coefs_, ours.intercepts_ = [W.copy() for W in W0], [b.copy() for b in b0]
    _fit_quiet(sk.set_params(max_iter=3), X, y)
    _fit_quiet(ours.set_params(max_iter=3), X, y)
    rtol = RTOL_LBFGS if solver == "lbfgs" else RTOL_STOCHASTIC
    assert _rel_err(ours.coefs_, sk.coefs_) <= rtol
    assert _rel_err(ours.intercepts_, sk.intercepts_) <= rtol
    assert ours.coefs_[0].dtype == np.float64
    assert ours.n_iter_ == sk.n_iter_
    assert ours.loss_ == pytest.approx(sk.loss_, rel=rtol)
    if solver != "lbfgs":
        assert ours.t_ == sk.t_
        np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=rtol)
    if task == "regression":
        np.testing.assert_allclose(ours.predict(X), sk.predict(X), rtol=rtol, atol=rtol)
    else:
        np.testing.assert_array_equal(ours.predict(X), sk.predict(X))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel", "regression"])
def test_from_scratch_parity_with_shuffling_and_early_stopping(rng, task, backend):
    """Equal random_state gives scikit-learn's initial weights, split and batch order."""
    X, y = _data(rng, task, n=150)
    sw = rng.uniform(0.5, 2.0, size=len(X))
    params = dict(hidden_layer_sizes=(8,), activation="relu", solver="adam", batch_size=16,
                  learning_rate_init=0.01, alpha=1e-3, max_iter=4, random_state=7,
                  early_stopping=True, validation_fraction=0.2, n_iter_no_change=50)
    sk, Nf = _pair(task, params)
    ours = Nf(backend=backend, **params)
    _fit_quiet(sk, X, y, sample_weight=sw)
    _fit_quiet(ours, X, y, sample_weight=sw)
    assert _rel_err(ours.coefs_, sk.coefs_) <= RTOL_STOCHASTIC
    np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=RTOL_STOCHASTIC)
    np.testing.assert_allclose(ours.validation_scores_, sk.validation_scores_,
                               rtol=RTOL_STOCHASTIC)
    assert ours.best_validation_score_ == pytest.approx(sk.best_validation_score_)
    assert len(ours.validation_loss_curve_) == ours.n_iter_ == sk.n_iter_
    assert ours.out_activation_ == sk.out_activation_
    assert ours.n_outputs_ == sk.n_outputs_


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("solver", ["nesterov", "adam"])
def test_partial_fit_parity(rng, solver, backend):
    """The optimizer state (velocity, Adam moments and step) carries over between calls."""
    X, y = _data(rng, "multiclass", n=120)
    classes = np.unique(y)
    params = dict(hidden_layer_sizes=(7,), activation="logistic", batch_size=25,
                  learning_rate_init=0.05, random_state=3, **SOLVERS[solver])
    sk = SkClassifier(**params)
    ours = nf.MLPClassifier(backend=backend, **params)
    for chunk in np.array_split(np.arange(len(X)), 4):
        sk.partial_fit(X[chunk], y[chunk], classes=classes)
        ours.partial_fit(X[chunk], y[chunk], classes=classes)
    assert _rel_err(ours.coefs_, sk.coefs_) <= RTOL_STOCHASTIC
    assert ours.t_ == sk.t_
    assert ours.n_iter_ == sk.n_iter_ == 1


def test_adaptive_learning_rate_parity(rng):
    """The 'adaptive' schedule divides the rate by 5 on the same epochs as scikit-learn."""
    X, y = _data(rng, "regression", n=60)
    params = dict(hidden_layer_sizes=(6,), activation="tanh", solver="sgd", momentum=0.5,
                  learning_rate="adaptive", learning_rate_init=0.2, batch_size=60,
                  tol=0.05, n_iter_no_change=1, max_iter=15, random_state=1)
    sk = _fit_quiet(SkRegressor(**params), X, y)
    ours = _fit_quiet(nf.MLPRegressor(backend="numpy", **params), X, y)
    assert ours.n_iter_ == sk.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, sk.loss_curve_, rtol=RTOL_STOCHASTIC)
    assert _rel_err(ours.coefs_, sk.coefs_) <= RTOL_STOCHASTIC

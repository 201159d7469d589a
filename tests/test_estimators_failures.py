"""What an estimator holds after a failed fit: never a model that predicts NaN."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import nnopt_fast as nf
from nnopt_fast import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SKLEARN_SENTENCES = ("Solver produced non-finite parameter weights. The input data may "
                     "contain large values and need to be preprocessed.")


def _data(rng, n=120):
    X = rng.normal(size=(n, 4))
    return X, X @ [1.0, -2.0, 0.5, 0.0] + 0.1 * rng.normal(size=n)


def _snapshot(est):
    return [a.copy() for a in est.coefs_ + est.intercepts_], dict(
        loss_curve_=list(est.loss_curve_), n_iter_=est.n_iter_, t_=est.t_)


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_a_huge_learning_rate_leaves_a_first_fit_unfitted(rng, Est):
    X, y = _data(rng)
    y = (y > 0).astype(int) if Est is MLPClassifier else y
    est = Est(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e300, max_iter=5,
              random_state=0)
    with pytest.raises(nf.FitDivergenceError) as info:
        est.fit(X, y)
    msg = str(info.value)
    assert msg.startswith("Solver produced non-finite parameter weights.")
    # The inputs are fine: the advice is the step size, not preprocessing.
    assert "smaller learning_rate_init" in msg and "large values" not in msg
    assert "left unfitted" in msg
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_failed_call_keeps_the_previous_model(rng, method):
    X, y = _data(rng)
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.01,
                       max_iter=3, random_state=0).fit(X, y)
    weights, attrs = _snapshot(est)
    pred = est.predict(X)
    # partial_fit goes on at the optimizer's rate; targets of 1e300 overflow its loss.
    est.set_params(learning_rate_init=1e300)
    with pytest.raises(nf.FitDivergenceError, match="keeps the state it had before"):
        getattr(est, method)(X, y if method == "fit" else y * 1e300)
    for a, b in zip(est.coefs_ + est.intercepts_, weights):
        np.testing.assert_array_equal(a, b)
    assert _snapshot(est)[1] == attrs
    np.testing.assert_array_equal(est.predict(X), pred)
    # Errors other than divergence keep it too: a mini-batch of zero weights ...
    sw = np.ones(len(y))
    sw[:60] = 0.0
    est.set_params(learning_rate_init=0.01, batch_size=30, shuffle=False)
    with pytest.raises(ValueError, match="sample_weight"):
        getattr(est, method)(X, y, sample_weight=sw)
    np.testing.assert_array_equal(est.predict(X), pred)


def test_a_failed_partial_fit_keeps_classes_and_weights(rng):
    X, y = _data(rng)
    labels = np.where(y > 0, "up", "down")
    clf = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    clf.partial_fit(X, labels, classes=["down", "up"])
    weights, attrs = _snapshot(clf)
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(X, np.where(y > 1, "sideways", labels))
    np.testing.assert_array_equal(clf.classes_, ["down", "up"])
    for a, b in zip(clf.coefs_ + clf.intercepts_, weights):
        np.testing.assert_array_equal(a, b)


def test_inputs_near_the_float_limit_get_the_preprocessing_advice(rng):
    # scikit-learn's test_nonfinite_params.
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    est = MLPRegressor()
    with pytest.warns(nf.ScalingWarning, match="root mean square"), \
            pytest.raises(ValueError, match=SKLEARN_SENTENCES) as info:
        est.fit(X, y)
    msg = str(info.value)
    assert "Standardize them" in msg and "smaller learning rate does not fix" in msg
    assert "smaller learning_rate_init" not in msg
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_targets_of_huge_magnitude_get_the_target_advice(rng):
    X, y = _data(rng)
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=0.1,
                       max_iter=5, random_state=0)
    with pytest.raises(ValueError, match=SKLEARN_SENTENCES) as info:
        est.fit(X, y * 1e200)
    assert "TransformedTargetRegressor" in str(info.value)


def test_weights_of_the_failing_epoch_start_are_kept_when_they_predict(rng):
    # Full-batch SGD with momentum at too large a step: the loss grows for 13 epochs and
    # overflows in the 14th, whose starting weights still predict finite values.
    X, y = _data(rng)
    est = MLPRegressor(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.3,
                       activation="identity", batch_size=120, max_iter=50, random_state=0)
    with pytest.raises(nf.FitDivergenceError) as info:
        est.fit(X, y)
    assert isinstance(info.value, ValueError) and isinstance(info.value, nf.DivergenceError)
    assert info.value.epoch == 14
    assert "keeps its weights from the start of epoch 14" in str(info.value)
    assert "smaller learning_rate_init (e.g. 0.03)" in str(info.value)
    assert len(est.loss_curve_) == est.n_iter_ == 13
    assert all(np.isfinite(W).all() for W in est.coefs_ + est.intercepts_)
    assert np.isfinite(est.predict(X)).all()


def test_early_stopping_keeps_the_best_weights_of_a_diverging_fit():
    # scikit-learn's test_mlp_diverging_loss, plus what the estimator then holds.
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    est = MLPRegressor(hidden_layer_sizes=100, activation="identity", solver="sgd",
                       learning_rate_init=1, max_iter=20, early_stopping=True,
                       random_state=0)
    with pytest.warns(ConvergenceWarning, match="Training stopped at epoch"):
        est.fit(X, y)
    assert np.isnan(est.validation_scores_[-1])
    assert not np.isfinite(est.loss_curve_[-1])
    assert est.best_validation_score_ == max(s for s in est.validation_scores_
                                             if np.isfinite(s))
    np.testing.assert_array_equal(np.concatenate([a.ravel() for a in est.coefs_[:1]]),
                                  est._best_params[:est.coefs_[0].size])
    assert np.isfinite(est.predict(X)).all()


def test_lbfgs_on_overflowing_inputs_raises_or_predicts_finite_values(rng):
    # Whether the first forward pass overflows depends on the initial weights' signs:
    # each fit either raises (and leaves the estimator unfitted) or predicts finite values.
    X = np.finfo(np.float64).max * rng.uniform(size=(20, 3))
    y = rng.normal(size=20)
    raised = 0
    for seed in range(8):
        est = MLPRegressor(solver="lbfgs", hidden_layer_sizes=(3,), max_iter=5,
                           random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                est.fit(X, y)
            except ValueError as err:
                assert str(err).startswith(SKLEARN_SENTENCES)
                with pytest.raises(NotFittedError):
                    est.predict(X)
                raised += 1
            else:
                assert np.isfinite(est.predict(X)).all()
    assert raised >= 1


def test_a_last_step_that_overflows_is_caught_after_the_loop(rng):
    # One epoch of one batch: its loss (taken before the step) is finite, the step sends
    # the weights to ~1e300, whose predictions overflow.
    X, y = _data(rng)
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e300,
                       batch_size=120, max_iter=1, random_state=0)
    with pytest.raises(nf.FitDivergenceError, match="left unfitted"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)

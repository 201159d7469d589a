"""Tests of nnopt_fast.diagnosis: decomposition, curves, advice, plots and the diagnose command."""

import io
import os
import re
import warnings

import numpy as np
import pytest
from joblib import parallel_backend
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import make_circles
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nnopt_fast as nf
from nnopt_fast.diagnosis import bias_variance_curve, decomposition

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def rng():
    return np.random.default_rng(20260601)


def _regression(rng, n, d=4, noise=0.3):
    X = rng.normal(size=(n, d))
    y = np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + noise * rng.normal(size=n)
    return X, y


def _tiny_regressor(**kw):
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50, random_state=0)
    params.update(kw)
    return nf.MLPRegressor(**params)


def _tiny_classifier(**kw):
    params = dict(hidden_layer_sizes=(8,), max_iter=30, learning_rate_init=0.02,
                  random_state=0)
    params.update(kw)
    return nf.MLPClassifier(**params)


class Probe(RegressorMixin, BaseEstimator):
    """Predicts a number read from its own parameters: shows what each round's clone got."""

    def __init__(self, n_threads=4, random_state=None, report="n_threads"):
        self.n_threads = n_threads
        self.random_state = random_state
        self.report = report

    def fit(self, X, y):
        self.value_ = float(getattr(self, self.report) or 0)
        return self

    def predict(self, X):
        return np.full(len(X), self.value_)


# ---------------------------------------------------------------------------
# the decomposition's arithmetic, on predictions worked out by hand
# ---------------------------------------------------------------------------
def test_decompose_mse_hand_worked():
    # Two test points, three rounds. f̄ = (2, 0); y = (1, 1).
    # bias² = ((2-1)² + (0-1)²) / 2 = 1
    # variance = (((1-2)² + (2-2)² + (3-2)²)/3 + ((0)² + (1)² + (-1)²)/3) / 2 = 2/3
    # expected = (((0)² + 1² + 2²)/3 + ((-1)² + 0² + (-2)²)/3) / 2 = (5/3 + 5/3)/2 = 5/3
    P = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, -1.0]])
    out = decomposition.decompose(P, np.array([1.0, 1.0]), "mse")
    assert out["bias_squared"] == pytest.approx(1.0, abs=1e-15)
    assert out["variance"] == pytest.approx(2 / 3, abs=1e-15)
    assert out["expected_loss"] == pytest.approx(5 / 3, abs=1e-15)
    np.testing.assert_array_equal(out["main_prediction"], [2.0, 0.0])


def test_decompose_zero_one_hand_worked_string_labels():
    # Four rounds, three points, labels are strings.
    #   point 0: preds a a a b, y = a -> main a, B = 0, V = 1/4, loss 1/4
    #   point 1: preds b b c a, y = a -> main b, B = 1, V = 2/4, P(f=y | f≠main) = 1/2,
    #            loss = 3/4 = B + c·V with c = -1/2
    #   point 2: preds c c b b, y = b -> tie b/c goes to "b" (sorted first): B = 0, V = 1/2
    P = np.array([["a", "b", "c"], ["a", "b", "c"], ["a", "c", "b"], ["b", "a", "b"]])
    y = np.array(["a", "a", "b"])
    out = decomposition.decompose(P, y, "0-1")
    np.testing.assert_array_equal(out["main_prediction"], ["a", "b", "b"])
    assert out["bias_squared"] == pytest.approx(1 / 3, abs=1e-15)
    assert out["variance"] == pytest.approx((1 / 4 + 1 / 2 + 1 / 2) / 3, abs=1e-15)
    assert out["expected_loss"] == pytest.approx((1 / 4 + 3 / 4 + 1 / 2) / 3, abs=1e-15)
    assert out["variance_unbiased"] == pytest.approx((1 / 4 + 1 / 2) / 3, abs=1e-15)
    assert out["variance_biased"] == pytest.approx((1 / 2 * 1 / 2) / 3, abs=1e-15)
    # Domingos: expected loss = bias + V_unbiased − V_biased, exactly.
    assert out["expected_loss"] == pytest.approx(
        out["bias_squared"] + out["variance_unbiased"] - out["variance_biased"], abs=1e-15)


def test_decompose_rejects_bad_input():
    with pytest.raises(TypeError, match="loss='0-1'"):
        decomposition.decompose(np.array([["a"], ["b"]]), np.array(["a"]), "mse")
    with pytest.raises(ValueError, match="one label per sample"):
        decomposition.decompose(np.zeros((2, 3, 2)), np.zeros((3, 2)), "0-1")
    with pytest.raises(ValueError, match="loss must be one of"):
        decomposition.decompose(np.zeros((2, 3)), np.zeros(3), "hinge")


# ---------------------------------------------------------------------------
# bias_variance on real fits
# ---------------------------------------------------------------------------
def test_mse_identity_and_predictions(rng):
    X, y = _regression(rng, 80)
    Xte, yte = _regression(rng, 40)
    X_copy, y_copy = X.copy(), y.copy()
    r = nf.bias_variance(_tiny_regressor(), X, y, Xte, yte, n_rounds=6, loss="mse",
                         random_state=3, return_predictions=True)
    assert r.expected_loss == pytest.approx(r.bias_squared + r.variance, rel=1e-12)
    assert r.predictions.shape == (6, 40) and r.fit_times.shape == (6,)
    # Recompute every term from the stored predictions, independently of decompose().
    P = r.predictions
    assert r.expected_loss == pytest.approx(np.mean((P - yte) ** 2), rel=1e-12)
    assert r.bias_squared == pytest.approx(np.mean((P.mean(0) - yte) ** 2), rel=1e-12)
    assert r.variance == pytest.approx(np.mean(P.var(axis=0)), rel=1e-12)
    assert r.variance > 0 and r.bias is None and r.net_variance == r.variance
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)
    assert "bias²" in str(r)


def test_same_numbers_whatever_n_jobs_or_backend(rng):
    X, y = _regression(rng, 60)
    Xte, yte = _regression(rng, 30)
    est = _tiny_regressor(random_state=None)
    runs = [nf.bias_variance(est, X, y, Xte, yte, n_rounds=4, random_state=11, n_jobs=1,
                             return_predictions=True)]
    runs.append(nf.bias_variance(est, X, y, Xte, yte, n_rounds=4, random_state=11, n_jobs=2,
                                 return_predictions=True))
    with parallel_backend("threading", n_jobs=2):
        runs.append(nf.bias_variance(est, X, y, Xte, yte, n_rounds=4, random_state=11,
                                     return_predictions=True))
    for other in runs[1:]:
        np.testing.assert_array_equal(other.predictions, runs[0].predictions)
        assert other.expected_loss == runs[0].expected_loss
    different = nf.bias_variance(est, X, y, Xte, yte, n_rounds=4, random_state=12)
    assert different.expected_loss != runs[0].expected_loss


def test_bootstrap_rounds_resample_with_replacement(rng):
    # A mean predictor fitted on a bootstrap sample of size n predicts the sample's mean,
    # whose variance over resamples is var(y) / n (population variance): check it.
    n = 40
    X = rng.normal(size=(n, 2))
    y = rng.normal(size=n)
    r = nf.bias_variance(DummyRegressor(), X, y, X[:5], y[:5], n_rounds=400, random_state=0)
    assert r.variance == pytest.approx(y.var() / n, rel=0.25)
    assert r.bias_squared == pytest.approx(np.mean((y.mean() - y[:5]) ** 2), abs=3 * y.var() / n)


def test_each_round_fits_single_threaded_with_its_own_seed(rng):
    X = rng.normal(size=(10, 2))
    y = rng.normal(size=10)
    r = nf.bias_variance(Probe(n_threads=4), X, y, X, y, n_rounds=5, random_state=0,
                         return_predictions=True)
    np.testing.assert_array_equal(r.predictions, 1.0)
    seeds = nf.bias_variance(Probe(report="random_state"), X, y, X, y, n_rounds=5,
                             random_state=0, return_predictions=True).predictions[:, 0]
    assert len(np.unique(seeds)) == 5
    kept = nf.bias_variance(Probe(report="random_state", random_state=7), X, y, X, y,
                            n_rounds=5, random_state=0, seed_estimator=False,
                            return_predictions=True).predictions
    np.testing.assert_array_equal(kept, 7.0)


def test_zero_one_string_labels_with_the_mlp(rng):
    X, y01 = make_circles(160, noise=0.1, factor=0.5, random_state=1)
    y = np.array(["inner", "outer"])[1 - y01]
    r = nf.bias_variance(_tiny_classifier(), X[:120], y[:120], X[120:], y[120:], n_rounds=5,
                         loss="0-1", random_state=0, return_predictions=True)
    assert set(np.unique(r.predictions)) <= {"inner", "outer"}
    assert set(np.unique(r.main_prediction)) <= {"inner", "outer"}
    assert 0 <= r.bias <= 1 and 0 <= r.variance <= 0.5
    assert r.expected_loss == pytest.approx(np.mean(r.predictions != y[120:]), abs=1e-15)
    # Two classes: P(f = y | f ≠ main) = 1, so Domingos' identity is bias + V_u − V_b.
    assert r.expected_loss == pytest.approx(r.bias + r.variance_unbiased - r.variance_biased,
                                            abs=1e-12)


def test_bias_variance_bad_arguments(rng):
    X, y = _regression(rng, 20)
    with pytest.raises(ValueError, match="loss"):
        nf.bias_variance(DummyRegressor(), X, y, X, y, loss="l2")
    with pytest.raises(ValueError, match="n_rounds"):
        nf.bias_variance(DummyRegressor(), X, y, X, y, n_rounds=0)
    with pytest.raises(TypeError, match="n_rounds"):
        nf.bias_variance(DummyRegressor(), X, y, X, y, n_rounds=2.5)
    with pytest.raises(ValueError, match="y_test has 19 samples"):
        nf.bias_variance(DummyRegressor(), X, y, X, y[:19])
    with pytest.raises(TypeError, match="estimator"):
        nf.bias_variance(object(), X, y, X, y)
    with pytest.raises(TypeError, match="random_state"):
        nf.bias_variance(DummyRegressor(), X, y, X, y, random_state="seed")
    with pytest.raises(TypeError, match="loss='0-1'"):
        nf.bias_variance(DummyClassifier(), X, np.array(["a", "b"] * 10), X,
                         np.array(["a", "b"] * 10), n_rounds=2)


def test_bias_variance_curve_shares_rounds_across_values(rng):
    X, y = _regression(rng, 60)
    Xte, yte = _regression(rng, 30)
    est = _tiny_regressor(alpha=0.0)
    c = bias_variance_curve(est, X, y, Xte, yte, "alpha", [0.0, 1.0], n_rounds=4,
                            random_state=5)
    single = nf.bias_variance(est, X, y, Xte, yte, n_rounds=4, random_state=5)
    assert c.results[0].expected_loss == single.expected_loss  # same rounds, same seeds
    assert c.expected_loss.shape == c.bias_squared.shape == c.variance.shape == (2,)
    with pytest.raises(ValueError, match="param_name"):
        bias_variance_curve(est, X, y, Xte, yte, "nope", [1], n_rounds=2)


@pytest.mark.parametrize("n_classes", [2, 3, 10])
def test_log_loss_of_equals_scikit_learns_bit_for_bit(rng, n_classes):
    from nnopt_fast.diagnosis._common import log_loss_of

    labels = np.array([f"c{k:02d}" for k in range(n_classes)])
    for n in (1, 7, 1000):
        P = rng.dirichlet(np.ones(n_classes) * 0.3, size=n)
        P[0] = np.eye(n_classes)[0]  # probabilities 0 and 1: both clipped
        P /= P.sum(axis=1, keepdims=True)
        y = labels[rng.integers(0, n_classes, n)]
        assert log_loss_of(y, P, labels) == log_loss(y, P, labels=labels)
    with pytest.raises(ValueError, match="missing from labels"):
        log_loss_of(np.array(["zz"]), np.full((1, n_classes), 1 / n_classes), labels)


def test_reports_label_a_pipeline_parameter_by_its_last_part(rng):
    X, y = _regression(rng, 60)
    Xte, yte = _regression(rng, 30)
    est = make_pipeline(StandardScaler(), _tiny_regressor())
    name = "mlpregressor__alpha"
    bvc = bias_variance_curve(est, X, y, Xte, yte, name, [0.0, 1.0], n_rounds=2,
                              random_state=0)
    vc = nf.validation_curve(est, X, y, name, [0.0, 1.0], cv=2)
    for text in (str(bvc), str(vc)):
        title, header = text.splitlines()[:2]
        assert name in title
        assert header.split()[0] == "alpha"


# ---------------------------------------------------------------------------
# curves
# ---------------------------------------------------------------------------
def test_validation_curve_matches_a_manual_fit(rng):
    X, y01 = make_circles(150, noise=0.1, factor=0.5, random_state=2)
    y = np.array([3, 7])[y01]
    train, test = np.arange(100), np.arange(100, 150)
    est = _tiny_classifier(n_threads=1)
    vc = nf.validation_curve(est, X, y, "alpha", [1e-4, 1.0], cv=[(train, test)])
    assert vc.train_scores.shape == vc.validation_losses.shape == vc.fit_times.shape == (2, 1)
    manual = _tiny_classifier(n_threads=1, alpha=1.0).fit(X[train], y[train])
    assert vc.validation_scores[1, 0] == manual.score(X[test], y[test])
    assert vc.train_scores[1, 0] == manual.score(X[train], y[train])
    assert vc.validation_losses[1, 0] == pytest.approx(
        log_loss(y[test], manual.predict_proba(X[test])), rel=1e-12)
    assert vc.loss_name == "log_loss" and vc.score_name == "accuracy"
    assert np.all(vc.fit_times > 0)


def test_validation_curve_over_tuples_and_other_params(rng):
    X, y = make_circles(200, noise=0.05, factor=0.5, random_state=3)
    est = _tiny_classifier(max_iter=80)
    vc = nf.validation_curve(est, X, y, "hidden_layer_sizes", [(1,), (32,)], cv=2)
    assert vc.param_range == [(1,), (32,)]
    # One hidden unit cannot separate two circles; 32 can (the curve must show it).
    assert vc.mean("train_scores")[1] > vc.mean("train_scores")[0] + 0.2
    assert vc.best("validation_scores") == (32,)
    for name, values in (("dropout", [0.0, 0.3]), ("l1", [0.0, 0.1])):
        other = nf.validation_curve(est, X, y, name, values, cv=2)
        assert other.validation_losses.shape == (2, 2)
        assert np.all(np.isfinite(other.validation_losses))
    with pytest.raises(ValueError, match="param_name 'widht'"):
        nf.validation_curve(est, X, y, "widht", [1])
    with pytest.raises(ValueError, match="by must be"):
        vc.best("train_scores")


def test_learning_curve_regressor_losses_are_mse(rng):
    X, y = _regression(rng, 90)
    est = _tiny_regressor()
    lc = nf.learning_curve(est, X, y, train_sizes=[0.5, 1.0], cv=3, random_state=0)
    np.testing.assert_array_equal(lc.train_sizes, [30, 60])
    assert lc.validation_losses.shape == (2, 3) and lc.loss_name == "mse"
    assert lc.score_name == "r2"
    # The learning curve's largest size with cv folds = validation_curve on the same folds.
    again = nf.learning_curve(est, X, y, train_sizes=[1.0], cv=3, random_state=0)
    np.testing.assert_array_equal(again.validation_losses[0], lc.validation_losses[1])
    # Losses are mse: for a regressor, R² = 1 − mse / var(y_fold) on each fold.
    assert np.all(lc.validation_losses > 0)
    with pytest.raises(ValueError, match="train_sizes"):
        nf.learning_curve(est, X, y, train_sizes=[1.5], cv=3)
    with pytest.raises(ValueError, match="train_sizes counts"):
        nf.learning_curve(est, X, y, train_sizes=[1000], cv=3)
    assert "learning curve" in str(lc)


def test_learning_curve_classifier_missing_class_has_finite_loss(rng):
    # 2 samples of a 3-class problem cannot contain every class: the loss must stay finite.
    X = rng.normal(size=(60, 3))
    y = np.repeat([0, 1, 2], 20)
    lc = nf.learning_curve(DummyClassifier(strategy="prior"), X, y, train_sizes=[2, 40],
                           cv=3, random_state=1)
    assert np.all(np.isfinite(lc.validation_losses))
    assert lc.validation_losses[0].mean() > lc.validation_losses[1].mean()


# ---------------------------------------------------------------------------
# the advice: constructed cases
# ---------------------------------------------------------------------------
def test_too_small_network_on_circles_is_high_bias():
    X, y = make_circles(300, noise=0.05, factor=0.5, random_state=0)
    est = nf.MLPClassifier(hidden_layer_sizes=(1,), learning_rate_init=0.02, max_iter=200,
                           random_state=0)
    rep = nf.diagnose(est, X, y, n_rounds=4, random_state=0)
    assert rep.high_bias and rep.verdict == "high bias"
    assert rep.train_error > 0.3
    first = rep.steps[0]
    assert first.title == "bigger network" and first.params == {"hidden_layer_sizes": (4,)}
    wider_train_error = float(first.outcome.split("->")[1].split()[0])
    assert wider_train_error < rep.train_error - 0.2
    assert rep.suggested_params == {"hidden_layer_sizes": (4,)}
    text = str(rep)
    assert "HIGH BIAS" in text and "no target_error given" in text
    assert "bigger network" in text and "train longer" in text


def test_large_unregularized_network_on_few_noisy_samples_is_high_variance(rng):
    def noisy(n):
        X = rng.normal(size=(n, 8))
        return X, np.sin(2 * X[:, 0]) + 0.5 * X[:, 1] + 0.5 * rng.normal(size=n)

    X, y = noisy(40)
    X_test, y_test = noisy(300)
    est = nf.MLPRegressor(hidden_layer_sizes=(128,), alpha=0.0, solver="lbfgs", max_iter=200,
                          random_state=0)
    rep = nf.diagnose(est, X, y, n_rounds=4, random_state=0)
    assert rep.high_variance and not rep.high_bias and rep.verdict == "high variance"
    assert rep.gap > 10 * rep.tolerance
    assert list(rep.suggested_params) == ["alpha"] and rep.suggested_params["alpha"] > 0
    assert "alpha" in rep.validation_curves
    assert rep.decomposition_after.variance < rep.decomposition.variance
    # Applying the suggestion on a fresh, larger test set measurably reduces the variance.
    before = nf.bias_variance(est, X, y, X_test, y_test, n_rounds=6, random_state=1)
    after = nf.bias_variance(est.set_params(**rep.suggested_params), X, y, X_test, y_test,
                             n_rounds=6, random_state=1)
    assert after.variance < 0.5 * before.variance
    text = str(rep)
    assert "HIGH VARIANCE" in text and "regularization" in text and "more data" in text


def test_target_error_and_good_fit_in_a_pipeline(rng):
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    est = make_pipeline(StandardScaler(), _tiny_classifier(max_iter=100))
    rep = nf.diagnose(est, X, y, target_error=0.0, n_rounds=3, random_state=0,
                      tolerance=0.2)
    assert rep.verdict == "good fit" and rep.steps[0].title == "done"
    assert "avoidable bias" in rep.reasons[0]
    assert "Pipeline(StandardScaler -> MLPClassifier)" in str(rep)
    with pytest.raises(ValueError, match="target_error"):
        nf.diagnose(est, X, y, target_error=-1)
    with pytest.raises(ValueError, match="tolerance"):
        nf.diagnose(est, X, y, tolerance=2)


# ---------------------------------------------------------------------------
# plots and the command line
# ---------------------------------------------------------------------------
def test_figures(rng):
    import matplotlib  # noqa: F401  (in the test extra: a missing install fails)
    from matplotlib.figure import Figure

    from nnopt_fast.diagnosis import (
        plot_bias_variance_curve,
        plot_learning_curve,
        plot_validation_curve,
    )

    X, y = _regression(rng, 60)
    est = DummyRegressor()
    lc = nf.learning_curve(est, X, y, train_sizes=[0.5, 1.0], cv=2)
    vc = nf.validation_curve(est, X, y, "quantile", [0.1, 0.5, 0.9], cv=2)
    bvc = bias_variance_curve(est, X, y, X, y, "strategy", ["mean", "median"], n_rounds=3)
    for fig in (plot_learning_curve(lc), plot_validation_curve(vc, what="scores"),
                plot_bias_variance_curve(bvc)):
        assert isinstance(fig, Figure)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = plot_bias_variance_curve(bvc).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["mean", "median"]
    with pytest.raises(ValueError, match="what"):
        plot_learning_curve(lc, what="accuracy")


def test_figures_without_matplotlib(monkeypatch, rng):
    import sys

    from nnopt_fast.diagnosis import plot_learning_curve

    X, y = _regression(rng, 20)
    lc = nf.learning_curve(DummyRegressor(), X, y, train_sizes=[1.0], cv=2)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"nnopt_fast\[plot\]"):
        plot_learning_curve(lc)


def test_diagnose_command(tmp_path, rng, capsys):
    import matplotlib  # noqa: F401  (in the test extra: a missing install fails)
    from nnopt_fast.cli import main

    X, y = _regression(rng, 60, noise=0.1)
    data = tmp_path / "reg.npz"
    np.savez(data, X=X, y=y)
    out = tmp_path / "out"
    status = main(["diagnose", "--data", str(data), "--out", str(out), "--layers", "4",
                   "--max-iter", "20", "--n-rounds", "2", "--cv", "2", "--n-jobs", "1",
                   "--quiet"])
    assert status == 0
    files = sorted(os.listdir(out))
    assert files == ["reg_bias_variance_alpha.png", "reg_learning_curve.png", "reg_report.txt",
                     "reg_validation_curve_alpha.png"]
    report = (out / "reg_report.txt").read_text()
    assert "error = mse" in report and "Verdict:" in report
    assert "at most 20 epochs per fit" in report  # --max-iter, the old spelling of --epochs
    assert "Verdict:" in capsys.readouterr().out
    assert main(["diagnose", "--data", str(tmp_path / "missing.csv"), "--out",
                 str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_diagnose_reads_real_targets_from_csv(tmp_path, rng, capsys):
    # One loader serves both commands: numbers with fractional parts are a regression target.
    from nnopt_fast.cli import main
    from nnopt_fast.cli.data import load_data

    X, y = _regression(rng, 30, noise=0.1)
    path = tmp_path / "reg.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",")
    data = load_data(str(path))
    np.testing.assert_allclose(data.X, X)
    np.testing.assert_allclose(data.y, y)
    one = tmp_path / "one.csv"
    np.savetxt(one, np.column_stack([X, y])[:1], delimiter=",")
    assert main(["diagnose", "--data", str(one), "--out", str(tmp_path / "o")]) == 2
    assert "expected at least 2 rows, got 1" in capsys.readouterr().err


@pytest.fixture
def diabetes_csv(tmp_path):
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    path = tmp_path / "diabetes.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("task", [[], ["--task", "regression"]])
def test_diabetes_is_diagnosed_as_a_regression(tmp_path, capsys, diabetes_csv, task):
    from nnopt_fast.cli import main

    out = tmp_path / "d"
    status = main(["diagnose", "--data", str(diabetes_csv), "--out", str(out), "--layers", "4",
                   "--epochs", "30", "--n-rounds", "2", "--cv", "2", "--n-jobs", "1",
                   "--quiet", *task])
    stdout, err = capsys.readouterr()
    assert status == 0, err
    assert "Traceback" not in stdout + err
    report = (out / "diabetes_report.txt").read_text()
    assert report == stdout.rsplit("wrote ", 1)[0]
    why = "--task" if task else "214 distinct integer values in 442 rows; --task to choose"
    assert f"task: regression ({why})" in report
    assert "a regression target, standardized inside every fit" in report
    assert "error = mse; the constant predictor is the training split's mean" in report
    assert re.search(r"validation error +\d+ +\(constant predictor: \d+\)", report)
    assert "Verdict:" in report and "constant" in report.split("bias-variance over")[1]


def test_quiet_counts_the_convergence_warnings_instead_of_showing_them(tmp_path, capsys, rng):
    from sklearn.exceptions import ConvergenceWarning

    from nnopt_fast.cli import main

    X, y = make_circles(80, noise=0.1, factor=0.5, random_state=0)
    np.savez(tmp_path / "c.npz", X=X, y=y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = main(["diagnose", "--data", str(tmp_path / "c.npz"), "--out",
                       str(tmp_path / "o"), "--layers", "2", "--epochs", "3", "--n-rounds",
                       "2", "--cv", "2", "--n-jobs", "1", "--quiet"])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    counted = re.search(r"convergence: (\d+) fits stopped at --epochs before converging", out)
    assert counted and int(counted.group(1)) > 10
    assert out.count("ConvergenceWarning") == 1


def test_without_matplotlib_the_report_is_still_written(tmp_path, capsys, rng, monkeypatch):
    import sys

    from nnopt_fast.cli import main

    X, y = _regression(rng, 40)
    np.savez(tmp_path / "r.npz", X=X, y=y)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status = main(["diagnose", "--data", str(tmp_path / "r.npz"), "--out", str(tmp_path / "o"),
                   "--layers", "2", "--epochs", "5", "--n-rounds", "2", "--cv", "2",
                   "--n-jobs", "1", "--quiet"])
    assert status == 0
    assert os.listdir(tmp_path / "o") == ["r_report.txt"]
    assert ("figures: not drawn, they need matplotlib: pip install 'nnopt_fast[plot]'"
            in (tmp_path / "o" / "r_report.txt").read_text())


@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_figure_formats(tmp_path, rng, fmt, magic):
    from nnopt_fast.cli import main

    X, y = _regression(rng, 40)
    np.savez(tmp_path / "r.npz", X=X, y=y)
    assert main(["diagnose", "--data", str(tmp_path / "r.npz"), "--out", str(tmp_path / "o"),
                 "--layers", "2", "--epochs", "5", "--n-rounds", "2", "--cv", "2",
                 "--n-jobs", "1", "--quiet", "--format", fmt]) == 0
    figures = sorted(f for f in os.listdir(tmp_path / "o") if f.endswith(f".{fmt}"))
    assert figures == [f"r_bias_variance_alpha.{fmt}", f"r_learning_curve.{fmt}",
                       f"r_validation_curve_alpha.{fmt}"]
    for name in figures:
        assert (tmp_path / "o" / name).read_bytes().startswith(magic)


def test_progress_bar(rng, capsys):
    X, y = _regression(rng, 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nf.bias_variance(DummyRegressor(), X, y, X, y, n_rounds=3, progress=True)
    assert "bias-variance" in capsys.readouterr().err

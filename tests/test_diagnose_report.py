"""The diagnosis's constant-predictor baseline, its own verdict, the bands and the figures."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import nnopt_fast as nf
from nnopt_fast.diagnosis import bias_variance_curve
from nnopt_fast.diagnosis._common import constant_baseline

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_constant_baseline_hand_worked():
    # Majority class 0 of [0, 0, 1]; on [0, 1] it is right once: accuracy 0.5. The prior
    # (2/3, 1/3) gives log-loss -(log 2/3 + log 1/3) / 2.
    b = constant_baseline([0, 0, 1], [0, 1], classifier=True)
    assert (b.error, b.score) == (0.5, 0.5)
    assert b.loss == pytest.approx(-(np.log(2 / 3) + np.log(1 / 3)) / 2)
    # The training mean 2 on [2, 4]: mse (0 + 4) / 2 = 2; the targets' own spread is 1,
    # so R^2 = 1 - 2 / 1 = -1.
    r = constant_baseline([1.0, 2.0, 3.0], [2.0, 4.0], classifier=False)
    assert (r.error, r.loss, r.score) == (2.0, 2.0, -1.0)


def test_curve_baselines_are_what_a_constant_model_scores(rng):
    X = rng.normal(size=(120, 3))
    y = rng.integers(0, 3, 120)
    prior = DummyClassifier(strategy="prior")
    lc = nf.learning_curve(nf.MLPClassifier(hidden_layer_sizes=(2,), max_iter=5), X, y,
                           train_sizes=[1.0], cv=3)
    dummy = nf.learning_curve(prior, X, y, train_sizes=[1.0], cv=3)
    assert lc.baseline_loss == pytest.approx(dummy.validation_losses.mean())
    assert lc.baseline_score == pytest.approx(dummy.validation_scores.mean())
    assert "constant" in str(lc)
    yr = X @ [1.0, 2.0, 0.0] + 5.0
    vc = nf.validation_curve(DummyRegressor(), X, yr, "strategy", ["mean"], cv=3)
    assert vc.baseline_loss == pytest.approx(vc.validation_losses.mean())
    assert vc.baseline_score == pytest.approx(vc.validation_scores.mean())


def test_bias_variance_baseline_and_bands(rng):
    X = rng.normal(size=(80, 2))
    y = X[:, 0] + 0.3 * rng.normal(size=80)
    curve = bias_variance_curve(DummyRegressor(), X[:60], y[:60], X[60:], y[60:], "strategy",
                                ["mean", "median"], n_rounds=12, random_state=0)
    assert curve.baseline == pytest.approx(np.mean((y[60:] - y[:60].mean()) ** 2))
    for r in curve.results:
        lo, hi = r.bands["expected_loss"]
        assert lo <= hi and set(r.bands) == {"expected_loss", "bias", "net_variance"}
    np.testing.assert_allclose(curve.expected_loss, curve.bias_squared + curve.net_variance)
    # Rounds that all predict the same: every resample gives the same terms, no spread.
    same = nf.bias_variance(DummyRegressor(strategy="constant", constant=1.0), X[:60], y[:60],
                            X[60:], y[60:], n_rounds=5, random_state=0)
    assert same.bands["net_variance"] == (0.0, 0.0)
    assert same.bands["expected_loss"] == (same.expected_loss, same.expected_loss)


def test_a_model_worse_than_the_constant_predictor_gets_its_own_verdict():
    # Diabetes' raw target (mean 152, std 77) and a network that starts near 0: after 30
    # epochs its training mse is far above the constant predictor's.
    X, y = load_diabetes(return_X_y=True, scaled=False)
    est = make_pipeline(StandardScaler(), nf.MLPRegressor(hidden_layer_sizes=(8,), max_iter=30,
                                                          random_state=0))
    rep = nf.diagnose(est, X, y, n_rounds=2, random_state=0, n_jobs=1)
    assert rep.verdict == "worse than a constant predictor" and rep.worse_than_constant
    assert rep.train_error > 2 * rep.baseline_train_error
    titles = [s.title for s in rep.steps]
    assert titles[:2] == ["scale the target", "check the learning rate"]
    scaled = rep.steps[0]
    # Trying it: the scaled target trains below the constant predictor's error.
    reached = float(scaled.outcome.split(" -> ")[1].split()[0])
    assert reached < rep.baseline_train_error < rep.train_error
    assert "WORSE THAN A CONSTANT PREDICTOR" in str(rep)
    assert f"(constant predictor: {rep.baseline_train_error:.0f})" in str(rep)


def test_the_figures_show_what_they_say(rng):
    import matplotlib  # noqa: F401  (in the test extra)

    from nnopt_fast.diagnosis import plot_bias_variance_curve, plot_validation_curve

    X = rng.normal(size=(90, 2))
    y = (X[:, 0] > 0).astype(int)
    est = nf.MLPClassifier(hidden_layer_sizes=(3,), max_iter=20, random_state=0)
    vc = nf.validation_curve(est, X, y, "alpha", [1e-4, 1e-1, 10.0], cv=2)
    fig = plot_validation_curve(vc, model="MLPClassifier(3)", data="blobs")
    loss_ax, score_ax = fig.axes
    assert "alpha (L2 penalty)" == loss_ax.get_xlabel() == score_ax.get_xlabel()
    assert (loss_ax.get_ylabel(), score_ax.get_ylabel()) == ("log-loss", "accuracy")
    assert "MLPClassifier(3) on blobs" in fig.get_suptitle()
    best_loss = min(vc.mean("validation_losses"))
    stars = [line for line in loss_ax.get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1 and stars[0].get_ydata()[0] == pytest.approx(best_loss)
    legend = [t.get_text() for t in score_ax.get_legend().get_texts()]
    assert any(t.startswith("constant predictor (") for t in legend)

    bvc = bias_variance_curve(est, X[:60], y[:60], X[60:], y[60:], "alpha", [1e-4, 10.0],
                              n_rounds=3, loss="0-1", random_state=0)
    ax = plot_bias_variance_curve(bvc, model="MLPClassifier(3)", data="blobs").axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    expected, bias, net = (lines[k].get_ydata() for k in (
        "expected loss", "bias (Domingos)", "net variance (unbiased − biased)"))
    np.testing.assert_allclose(expected, bias + net)  # the decomposition adds up
    styles = {lines[k].get_linestyle() for k in ("expected loss", "bias (Domingos)",
                                                "net variance (unbiased − biased)")}
    assert len(styles) == 3  # each its own style: none hidden under another
    assert len(ax.collections) >= 3  # a band per term
    assert ax.get_xlabel() == "alpha (L2 penalty)"

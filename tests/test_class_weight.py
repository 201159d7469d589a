"""class_weight of MLPClassifier and nf.train: the same fit as the equivalent sample weights."""

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_sample_weight

import nnopt_fast as nf
from nnopt_fast import MLPClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _imbalanced(rng, n=150, labels=("ant", "bee", "cat")):
    X = rng.normal(size=(n, 4))
    y = np.where(X[:, 0] > 1.0, 2, np.where(X[:, 1] > 0.3, 1, 0))
    return X, np.asarray(labels)[y]


def _assert_same_fit(a, b):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)
    if hasattr(a, "loss_curve_"):
        assert a.loss_curve_ == b.loss_curve_
    assert a.loss_ == b.loss_


CASES = [("balanced", "adam"), ({"cat": 4.0, "ant": 0.5}, "sgd"), ("balanced", "lbfgs"),
         ({"bee": 2.5}, "lbfgs")]


@pytest.mark.parametrize(("class_weight", "solver"), CASES)
@pytest.mark.parametrize("with_sample_weight", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_class_weight_equals_equivalent_sample_weight(rng, class_weight, solver,
                                                      with_sample_weight, dtype):
    X, y = _imbalanced(rng)
    X = X.astype(dtype)
    sw = rng.uniform(0.5, 2.0, size=len(y)) if with_sample_weight else None
    params = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=8, batch_size=32,
                  learning_rate_init=0.05, random_state=0)
    weighted = MLPClassifier(class_weight=class_weight, **params).fit(X, y, sample_weight=sw)
    # scikit-learn's own computation of the per-sample class weights.
    equivalent = compute_sample_weight(class_weight, y)
    if sw is not None:
        equivalent = sw * equivalent
    explicit = MLPClassifier(**params).fit(X, y, sample_weight=equivalent)
    _assert_same_fit(weighted, explicit)
    plain = MLPClassifier(**params).fit(X, y, sample_weight=sw)
    assert not np.array_equal(weighted.coefs_[0], plain.coefs_[0])


def test_class_weight_with_early_stopping_and_binary_labels(rng):
    X, y = _imbalanced(rng, n=200, labels=("no", "no", "yes"))
    params = dict(hidden_layer_sizes=(5,), early_stopping=True, max_iter=15, random_state=1)
    weighted = MLPClassifier(class_weight="balanced", **params).fit(X, y)
    explicit = MLPClassifier(**params).fit(X, y,
                                           sample_weight=compute_sample_weight("balanced", y))
    _assert_same_fit(weighted, explicit)
    assert weighted.validation_scores_ == explicit.validation_scores_


def test_partial_fit_takes_a_dict_but_not_balanced(rng):
    X, y = _imbalanced(rng)
    classes = ["ant", "bee", "cat"]
    weights = {"ant": 0.25, "cat": 3.0}
    weighted = MLPClassifier(hidden_layer_sizes=(4,), class_weight=weights, random_state=0)
    explicit = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    for chunk in np.array_split(np.arange(len(y)), 3):
        weighted.partial_fit(X[chunk], y[chunk], classes=classes)
        explicit.partial_fit(X[chunk], y[chunk], classes=classes,
                             sample_weight=compute_sample_weight(weights, y[chunk]))
    _assert_same_fit(weighted, explicit)
    with pytest.raises(ValueError, match="'balanced' is not supported by partial_fit"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=classes)


@pytest.mark.parametrize(("class_weight", "match"), [
    ({"dog": 2.0}, "class_weight has the key 'dog', which is not a class"),
    ({"ant": -1.0}, r"class_weight\['ant'\] must be >= 0"),
    ({"ant": np.nan}, r"class_weight\['ant'\] must be finite"),
    ("heavy", "class_weight"),
])
def test_bad_class_weight(rng, class_weight, match):
    X, y = _imbalanced(rng, n=40)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(max_iter=2, class_weight=class_weight).fit(X, y)


def test_class_weight_needs_one_class_per_sample(rng):
    X = rng.normal(size=(40, 3))
    with pytest.raises(ValueError, match="multilabel y has no single class"):
        MLPClassifier(max_iter=2, class_weight="balanced").fit(X, (X > 0).astype(int))


@pytest.mark.parametrize("output", ["softmax", "logistic"])
@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0}])
def test_train_class_weight_equals_equivalent_sample_weight(rng, output, class_weight):
    X = rng.normal(size=(120, 5))
    n_classes = 3 if output == "softmax" else 2
    y = np.minimum((X[:, 0] > 0.8) + (X[:, 1] > 0.5) * (n_classes - 2), n_classes - 1)
    sw = rng.uniform(0.5, 1.5, size=len(y))
    n_out = n_classes if output == "softmax" else 1
    nets = [nf.MLP([5, 7, n_out], output=output, dtype=np.float64, random_state=0)
            for _ in range(2)]
    kw = dict(epochs=3, batch_size=16, lr=0.1, optimizer="momentum", random_state=5,
              backend="numpy")
    h1 = nf.train(nets[0], X, y, sample_weight=sw, class_weight=class_weight, **kw)
    h2 = nf.train(nets[1], X, y, sample_weight=sw * compute_sample_weight(class_weight, y),
                  **kw)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    assert h1.loss == h2.loss


def test_train_class_weight_needs_class_outputs(rng):
    X = rng.normal(size=(30, 2))
    with pytest.raises(ValueError, match="class_weight needs a softmax output"):
        nf.train(nf.MLP([2, 3, 1], output="identity"), X, X[:, 0], class_weight="balanced")
    with pytest.raises(ValueError, match="class_weight needs a softmax output"):
        nf.train(nf.MLP([2, 3, 2], output="logistic"), X, (X > 0).astype(int),
                 class_weight={0: 2.0})
    with pytest.raises(ValueError, match="the key 5, which is not a class"):
        nf.train(nf.MLP([2, 3, 3]), X, np.arange(30) % 3, class_weight={5: 2.0})


def test_class_weight_is_a_parameter_of_the_classifier_only():
    assert MLPClassifier().get_params()["class_weight"] is None
    assert "class_weight" not in nf.MLPRegressor().get_params()

"""scikit-learn's own estimator checks on nnopt_fast's MLPClassifier and MLPRegressor."""

import warnings

import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import (
    check_sample_weight_equivalence_on_dense_data,
    parametrize_with_checks,
)

from nnopt_fast import MLPClassifier, MLPRegressor

# scikit-learn runs its own MLPs through these checks with max_iter=100; the checks' data
# sets are tiny, so a narrower hidden layer keeps the whole module within seconds.
FAST = dict(max_iter=100, hidden_layer_sizes=(20,))


# The defaults (adam), and the added features: dropout and proximal L1 under plain SGD.
ESTIMATORS = [
    MLPClassifier(**FAST),
    MLPRegressor(**FAST),
    MLPClassifier(solver="sgd", dropout=0.1, l1=1e-3, l1_method="proximal", **FAST),
]


_DROPOUT_REASON = (
    "dropout draws one mask row per sample row: a weight-2 sample is dropped as one unit, "
    "its duplicate in the repeated data set gets an independent mask, so the two fits "
    "differ by design (without dropout this check passes)"
)


def _expected_failed(est):
    if est.get_params().get("dropout", 0.0):
        return {"check_sample_weight_equivalence_on_dense_data": _DROPOUT_REASON,
                "check_sample_weight_equivalence_on_sparse_data": _DROPOUT_REASON}
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("Est", [MLPClassifier, MLPRegressor])
def test_sample_weight_equivalence_lbfgs(Est):
    # Full-batch L-BFGS sees a weight-2 sample exactly as two copies of it.
    est = Est(solver="lbfgs", hidden_layer_sizes=(5,), max_iter=200, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_sample_weight_equivalence_on_dense_data(Est.__name__, est)

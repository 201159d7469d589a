"""scikit-learn's own estimator checks on nnopt_fast's MLPClassifier and MLPRegressor."""

import warnings

import numpy as np
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

@parametrize_with_checks([MLPClassifier(**FAST), MLPRegressor(**FAST)])
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

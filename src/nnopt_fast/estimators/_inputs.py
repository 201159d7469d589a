"""X and y checked as scikit-learn's ``validate_data`` does, plain NumPy arrays by a short path."""

import numpy as np
from sklearn.utils.validation import validate_data

from .._validation import all_finite

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: The dtype kinds of a y that skips scikit-learn's checks: booleans, integers, floats
#: (when finite) and, for a classifier, unicode strings. Bytes labels, objects and
#: complex numbers go through scikit-learn, which converts or rejects them.
CLASSIFIER_Y_KINDS = "biufU"
REGRESSOR_Y_KINDS = "biuf"


def _plain_X(est, X, reset):
    """Whether X is what scikit-learn's checks would pass unchanged (its values aside): a
    2-D native float32 or float64 ``np.ndarray`` with rows and columns and, when the
    estimator is fitted (``reset`` false), its width and no fitted feature names."""
    if not (type(X) is np.ndarray and X.ndim == 2 and X.dtype in _FLOATS
            and X.shape[0] > 0 and X.shape[1] > 0):
        return False
    return reset or (X.shape[1] == getattr(est, "n_features_in_", None)
                     and not hasattr(est, "feature_names_in_"))


def _plain_y(y, n_samples, kinds):
    """Whether y is a 1-D or 2-D ``np.ndarray`` of ``n_samples`` rows (and at least one
    column), of a dtype kind in ``kinds``, with finite values."""
    if not (type(y) is np.ndarray and y.ndim in (1, 2) and y.shape[0] == n_samples
            and y.dtype.kind in kinds and (y.ndim == 1 or y.shape[1] > 0)):
        return False
    return y.dtype.kind != "f" or all_finite(y)


def check_predict_X(est, X):
    """X for a fitted estimator's inference, as ``validate_data(reset=False)`` returns it.

    A plain 2-D float array of the fitted width is returned as it is: its values are
    checked for NaN and infinity by the compiled forward pass as it reads them.

    Raises
    ------
    ValueError
        When X has another number of features than the estimator was fitted on, or
        for anything scikit-learn's checks reject.
    """
    if (type(X) is np.ndarray and X.ndim == 2 and X.dtype in _FLOATS and X.shape[0] > 0
            and not hasattr(est, "feature_names_in_")):
        if X.shape[1] != est.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is "
                             f"expecting {est.n_features_in_} features as input.")
        return X
    return validate_data(est, X, accept_sparse=["csr", "csc"], reset=False,
                         dtype=(np.float64, np.float32))


def check_training_data(est, X, y, reset, y_kinds, y_numeric=False):
    """X and y for a fit, as ``validate_data(est, X, y, multi_output=True, ...)`` gives them.

    Plain NumPy input (``_plain_X``, ``_plain_y``, finite values, one y row per X row)
    is returned as it is, and with ``reset`` the estimator records its width
    (``n_features_in_``) and forgets feature names of an earlier fit, as
    scikit-learn's checks do. Anything else goes through scikit-learn's checks, which
    convert it or raise their own errors.

    Parameters
    ----------
    est : estimator
    X : array-like or sparse matrix of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
    reset : bool
        Whether this fit starts afresh (records the width of X), or must match it.
    y_kinds : str
        The dtype kinds of y the short path takes (:data:`CLASSIFIER_Y_KINDS`,
        :data:`REGRESSOR_Y_KINDS`).
    y_numeric : bool
        scikit-learn's ``y_numeric`` (object targets become float64).

    Returns
    -------
    X : ndarray or sparse matrix, float32 or float64
    y : ndarray
    """
    if _plain_X(est, X, reset) and _plain_y(y, X.shape[0], y_kinds) and all_finite(X):
        if reset:
            est.n_features_in_ = X.shape[1]
            if hasattr(est, "feature_names_in_"):
                del est.feature_names_in_
        return X, y
    return validate_data(est, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                         y_numeric=y_numeric, dtype=(np.float64, np.float32), reset=reset)

"""MLPRegressor: scikit-learn's multi-layer perceptron regressor, trained by nnopt_fast."""

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._validation import check_poisson_targets
from ._base import _BaseMLP
from ._docs import fill
from ._inputs import REGRESSOR_Y_KINDS, check_training_data


@fill
class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's, trained by nnopt_fast.

    Parameters
    ----------
    loss : {{"squared_error", "poisson"}}, default="squared_error"
        ``"squared_error"``: half the squared error, identity output. ``"poisson"``: half
        the Poisson deviance with an exponential output (``out_activation_ = "exp"``),
        for non-negative targets such as counts; predictions are then positive.
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
    warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
    beta_1, beta_2, epsilon, n_iter_no_change, max_fun
        As in :class:`sklearn.neural_network.MLPRegressor` (same meanings and defaults).
    {params}

    Attributes
    ----------
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_,
    coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_,
    n_outputs_, out_activation_
        As in scikit-learn (``loss_`` is half the mean squared error over samples and
        outputs, plus the penalty).
    validation_loss_curve_ : list of float or None
        The data loss on the early-stopping validation split after each epoch (None
        without early stopping).
    backend_ : str
        The backend that ran the last fit.

    Notes
    -----
    {notes}
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, dropout=0.0, l1=0.0,
                 l1_method="subgradient", n_threads=None, parallel="sync", backend="auto"):
        self._store_params(locals())

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            float32 is kept; any other dtype is converted to float64.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Finite and non-negative.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), keeping the optimizer state between calls.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _out_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _n_outputs(self, Y):
        return Y.shape[1]

    def _validate_input(self, X, y, incremental, reset, classes):
        """Validated X and y as an (n_samples, n_outputs) array."""
        X, y = check_training_data(self, X, y, reset, REGRESSOR_Y_KINDS, y_numeric=True)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, np.asarray(y).reshape(len(y), -1)

    def _kernel_targets(self, Y, dtype):
        T = np.ascontiguousarray(Y, dtype=dtype)
        if self.loss == "poisson":
            check_poisson_targets(T)
        return T

    def _val_truth(self, Y):
        return Y

    def _val_score(self, Z, truth, sw):
        if not np.isfinite(Z).all():
            return np.nan
        return r2_score(truth, Z.ravel() if Z.shape[1] == 1 else Z, sample_weight=sw)

    def predict(self, X):
        """Predicted values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs), the model's dtype
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        P = self._forward_pass_fast(X, check_input=check_input)
        return P.ravel() if P.shape[1] == 1 else P

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, r2_score)

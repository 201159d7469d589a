"""MLPClassifier: scikit-learn's multi-layer perceptron classifier, trained by nnopt_fast."""

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted

from .._validation import check_class_weight, weigh_samples
from ..kernels import reference as ref
from . import _labels
from ._base import _BaseMLP
from ._docs import fill
from ._inputs import CLASSIFIER_Y_KINDS, check_training_data


@fill
class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's, trained by nnopt_fast.

    Binary targets get one logistic output, multiclass targets a softmax, multilabel
    indicator targets one logistic output per label; labels may be any hashable values.
    A ``y`` of a single class is fitted as scikit-learn does (``classes_ = [c]``, and
    every prediction is c).

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
    warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
    beta_1, beta_2, epsilon, n_iter_no_change, max_fun
        As in :class:`sklearn.neural_network.MLPClassifier` (same meanings and defaults).
    {params}
    class_weight : None, "balanced" or dict, default=None
        Weights of the classes, multiplied into ``sample_weight`` (binary and multiclass
        targets). A dict maps a class label to its weight (absent classes weigh 1);
        ``"balanced"`` weighs each class by ``n_samples / (n_classes * count)`` of the
        ``y`` given to ``fit`` (``partial_fit`` takes a dict only, as one batch does not
        show the class frequencies). A fit with ``class_weight`` equals, bit for bit, the
        fit with ``sample_weight`` multiplied by the classes' weights.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, t_,
    coefs_, intercepts_, n_features_in_, feature_names_in_, n_iter_, n_layers_,
    n_outputs_, out_activation_
        As in scikit-learn. ``coefs_[l]`` has shape (n_in, n_out) and the dtype of the
        training X (float32 stays float32; other dtypes become float64).
    validation_loss_curve_ : list of float or None
        The data loss on the early-stopping validation split after each epoch (None
        without early stopping).
    backend_ : str
        The backend that ran the last fit.

    Notes
    -----
    {notes}

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from nnopt_fast import MLPClassifier
    >>> clf = make_pipeline(StandardScaler(), MLPClassifier(random_state=0))
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, dropout=0.0, l1=0.0,
                 l1_method="subgradient", n_threads=None, parallel="sync", backend="auto",
                 class_weight=None):
        self._store_params(locals())

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            float32 is kept; any other dtype is converted to float64.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 indicator matrix for multilabel classification.
        sample_weight : array-like of shape (n_samples,), default=None
            Finite and non-negative.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), keeping the optimizer state between calls.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array-like of shape (n_classes,), default=None
            All the classes; required on the first call, optional afterwards.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, classes=classes)

    # ---------------------------------------------------------------- labels
    def _out_activation(self):
        return _labels.out_activation(self._y_type)

    def _n_outputs(self, codes):
        return _labels.n_outputs(self._y_type, len(self.classes_))

    def _validate_input(self, X, y, incremental, reset, classes):
        """Validated X and y encoded as int64 class indices (or an indicator matrix)."""
        X, y = check_training_data(self, X, y, reset, CLASSIFIER_Y_KINDS)
        if incremental and hasattr(self, "classes_") and self._y_type != "multilabel-indicator":
            # A later partial_fit whose labels are all known classes: nothing else to check.
            codes = _labels.encode_known(y, self.classes_)
            if codes is not None and (classes is None
                                      or _labels.same_classes(classes, self.classes_)):
                return X, codes
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        plain = _labels.plain_labels(y)
        y_type = plain[0] if plain else type_of_target(y, input_name="y")
        if y_type not in _labels.Y_TYPES:
            check_classification_targets(y)  # scikit-learn's own message for bad targets
            raise ValueError(f"MLPClassifier supports binary, multiclass and multilabel-"
                             f"indicator targets, got {y_type} targets")
        if incremental:
            self._partial_fit_classes(classes, y, y_type)
        elif not hasattr(self, "classes_") or not self.warm_start:
            self.classes_, codes = plain[1:] if plain else _labels.fit_classes(y, y_type)
            self._y_type = y_type
            return X, codes
        elif set(unique_labels(y)) != set(self.classes_):
            raise ValueError(
                f"warm_start can only be used where `y` has the same classes as in the "
                f"previous call to fit. Previously got {self.classes_}, `y` has "
                f"{unique_labels(y)}")
        return X, _labels.encode(y, self.classes_, self._y_type)

    def _partial_fit_classes(self, classes, y, y_type):
        """Set ``classes_`` on the first call to partial_fit; check them on later ones."""
        if classes is not None and hasattr(self, "classes_"):
            if not _labels.same_classes(classes, self.classes_):
                raise ValueError(f"`classes={classes!r}` is not the same as on last call "
                                 f"to partial_fit, was: {self.classes_!r}")
        if hasattr(self, "classes_"):
            return
        if classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if y_type == "multilabel-indicator":
            self.classes_, _ = _labels.fit_classes(y, y_type)
            self._y_type = y_type
            return
        self.classes_ = unique_labels(classes)
        self._y_type = "multiclass" if len(self.classes_) > 2 else "binary"

    def _sample_weight(self, sample_weight, codes, X, incremental):
        weights = None
        if self.class_weight is not None:
            if self._y_type == "multilabel-indicator":
                raise ValueError("class_weight needs binary or multiclass targets; a "
                                 "multilabel y has no single class per sample")
            if incremental and self.class_weight == "balanced":
                raise ValueError(
                    "class_weight='balanced' is not supported by partial_fit: one batch "
                    "does not show the class frequencies of the data. Compute them once, "
                    "e.g. compute_class_weight('balanced', classes=classes, y=y) from "
                    "sklearn.utils.class_weight, and pass them as a dict.")
            weights = check_class_weight(self.class_weight, codes, self.classes_)
        return weigh_samples(sample_weight, weights, codes, X.shape[0], X.dtype)

    def _kernel_targets(self, codes, dtype):
        return _labels.kernel_targets(codes, self.out_activation_, dtype)

    def _val_truth(self, codes):
        return _labels.decode_codes(codes, self.classes_, self._y_type)

    def _val_score(self, Z, truth, sw):
        P = ref.output_activation(self.out_activation_, Z)
        if not np.isfinite(P).all():
            return np.nan
        return accuracy_score(truth, _labels.decode(P, self.classes_, self._y_type),
                              sample_weight=sw)

    # ---------------------------------------------------------------- inference
    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        P = self._forward_pass_fast(X, check_input=check_input)
        return _labels.decode(P, self.classes_, self._y_type)

    def _score(self, X, y, sample_weight=None):
        return self._score_with_function(X, y, sample_weight, accuracy_score)

    def predict_proba(self, X):
        """Class probabilities, columns ordered as ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), the model's dtype
            With a single class, one column of ones.
        """
        check_is_fitted(self)
        P = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            if len(self.classes_) == 1:
                return np.ones_like(P)
            p = P.ravel()
            return np.vstack([1 - p, p]).T
        return P

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, shape (n_samples, n_classes)."""
        P = self.predict_proba(X)
        return np.log(P, out=P)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

"""MLPEnsemble: bagged nnopt_fast MLPs, trained together as one group, averaged."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import HasMethods, Interval, Options
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..train.threads import available_cores, default_estimator_threads, resolve_n_threads
from ._classifier import MLPClassifier
from ._group import group_fit, run_members, take

__all__ = ["MLPEnsemble"]

#: Largest estimator seed drawn for a member (scikit-learn's own bound for seeds).
_MAX_SEED = np.iinfo(np.int32).max


class MLPEnsemble(MetaEstimatorMixin, BaseEstimator):
    """Bagging of nnopt_fast MLPs: ``n_estimators`` networks, each fitted on its own
    bootstrap of the training rows with its own seed, their predictions averaged.

    The members train together as one group (``nf.train_many``'s driver): each ends
    exactly as its own ``fit`` on its rows would, the group of them in one compiled loop
    on ``n_jobs`` threads, X held once whatever ``n_estimators``. One class for both
    kinds, as a Pipeline: a classifier when ``estimator`` is one (``predict_proba``
    averages the members' probabilities), else a regressor (``predict`` averages their
    predictions).

    Parameters
    ----------
    estimator : MLPClassifier, MLPRegressor, a Pipeline ending in one, or None
        The network every member is a clone of (default ``MLPClassifier()``). Other
        estimators work too, fitted one after the other.
    n_estimators : int, default=10
    bootstrap : bool, default=True
        Draw each member's rows with replacement; False draws them without (with
        ``max_samples`` below the number of rows) or takes every row (members then
        differ by their seeds only).
    max_samples : int, float or None, default=None
        Rows per member: a count, a fraction of the training rows, or all of them.
    random_state : int, RandomState or None, default=None
        Seeds the members' rows and their networks (each member's ``random_state``).
    n_jobs : int or None, default=None
        Threads of the group (None: 1 inside a joblib worker, else ``OMP_NUM_THREADS``
        when set, else every core; -1: every core). The members' ``n_threads`` are set to 1.

    Attributes
    ----------
    estimators_ : list of estimator
        The fitted members.
    estimators_samples_ : list of ndarray of int
        Each member's training rows (repeats: bootstrap draws).
    classes_ : ndarray of shape (n_classes,)
        Classifiers: every class of the training targets.
    n_features_in_, feature_names_in_
        As in scikit-learn.
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "bootstrap": ["boolean"],
        "max_samples": [Interval(Integral, 1, None, closed="left"),
                        Interval(Real, 0, 1, closed="right"), None],
        "random_state": ["random_state"],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1}), None],
    }

    def __init__(self, estimator=None, n_estimators=10, *, bootstrap=True, max_samples=None,
                 random_state=None, n_jobs=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.bootstrap = bootstrap
        self.max_samples = max_samples
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _template(self):
        return MLPClassifier() if self.estimator is None else self.estimator

    # ---------------------------------------------------------------- fitting
    def fit(self, X, y):
        """Fit ``n_estimators`` members on their rows of (X, y).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (binary or multiclass), or targets.

        Returns
        -------
        self
        """
        self._validate_params()
        template = self._template()
        classifier = is_classifier(template)
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=not classifier,
                             **self._input_checks())
        if classifier:
            if y.ndim == 2 and y.shape[1] == 1:
                y = column_or_1d(y, warn=True)
            check_classification_targets(y)
            if y.ndim != 1:
                raise ValueError("MLPEnsemble classifies binary and multiclass targets (1-D "
                                 "y); got a 2-D y")
            self.classes_ = np.unique(y)
        n = X.shape[0]
        rs = check_random_state(self.random_state)
        m = self._n_rows(n)
        samples, members, shared = [], [], {}
        for _ in range(self.n_estimators):
            rows = (rs.randint(0, n, m) if self.bootstrap
                    else np.sort(rs.permutation(n)[:m]) if m < n else np.arange(n))
            est = clone(template)
            _set_leaf(est, "random_state", int(rs.randint(_MAX_SEED)))
            _set_leaf(est, "n_threads", 1)
            samples.append(rows)
            members.append((est, group_fit(est, X, y, rows, shared)))
        errors = run_members([g for _, g in members], self._threads())
        self.estimators_ = []
        for (est, g), rows, err in zip(members, samples, errors):
            fitted = g.finish(err) if g is not None else None
            if fitted is None:  # its own fit: the group cannot train it, or it failed
                fitted = clone(est).fit(take(X, rows), y[rows])
            self.estimators_.append(fitted)
        self.estimators_samples_ = samples
        return self

    def _input_checks(self):
        """``validate_data``'s checks of X for what the members take (their input tags):
        numbers unless they take strings, finite unless they take NaN, sparse or not."""
        tags = get_tags(self._template()).input_tags
        return dict(accept_sparse=["csr", "csc"] if tags.sparse else False,
                    dtype=None if tags.string else "numeric",
                    ensure_all_finite=not tags.allow_nan)

    def _n_rows(self, n):
        if self.max_samples is None:
            return n
        if isinstance(self.max_samples, Integral):
            if self.max_samples > n:
                raise ValueError(f"max_samples={self.max_samples} is more than the "
                                 f"{n} training rows")
            return int(self.max_samples)
        return max(1, int(round(self.max_samples * n)))

    def _threads(self):
        if self.n_jobs is None:
            return default_estimator_threads()
        return available_cores() if self.n_jobs == -1 else resolve_n_threads(self.n_jobs,
                                                                              "n_jobs")

    # ---------------------------------------------------------------- inference
    def _members_output(self, X, method):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, **self._input_checks())
        return [getattr(est, method)(X) for est in self.estimators_]

    @available_if(lambda self: is_classifier(self._template()))
    def predict_proba(self, X):
        """The members' class probabilities, averaged (float64, columns as ``classes_``;
        a member whose rows missed a class gives it probability 0).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), float64
        """
        check_is_fitted(self)
        total = None
        for est, proba in zip(self.estimators_, self._members_output(X, "predict_proba")):
            full = np.zeros((proba.shape[0], len(self.classes_)))
            full[:, np.searchsorted(self.classes_, est.classes_)] = proba
            total = full if total is None else total + full
        return total / len(self.estimators_)

    def predict(self, X):
        """Classifiers: the class of highest mean probability; regressors: the members'
        mean prediction (float64).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self)
        if is_classifier(self):
            return self.classes_[self.predict_proba(X).argmax(axis=1)]
        preds = self._members_output(X, "predict")
        return np.mean([np.asarray(p, dtype=np.float64) for p in preds], axis=0)

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers) or R^2 (regressors) of :meth:`predict`."""
        metric = accuracy_score if is_classifier(self) else r2_score
        return metric(y, self.predict(X), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self._template())
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags, tags.regressor_tags = inner.classifier_tags, inner.regressor_tags
        tags.target_tags, tags.input_tags = inner.target_tags, inner.input_tags
        if tags.classifier_tags is not None:  # one label per sample
            tags.classifier_tags.multi_label = tags.target_tags.multi_output = False
        return tags


def _set_leaf(est, name, value):
    """Set parameter ``name`` of ``est`` and of its nested estimators that have it."""
    keys = [k for k in est.get_params(deep=True) if k.rsplit("__", 1)[-1] == name]
    if keys:
        est.set_params(**{k: value for k in keys})

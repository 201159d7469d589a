"""Learning and validation curves with scores, losses and fit times, fitted in parallel."""

import numbers
from dataclasses import dataclass

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import KFold, StratifiedKFold, check_cv

from ._common import (
    as_seed_sequence,
    as_target,
    capture_warnings,
    check_estimator,
    derived_int,
    fmt,
    full_proba,
    log_loss_of,
    loss_name,
    mean_baseline,
    model_loss,
    n_samples_of,
    param_label,
    one_blas_thread,
    predicts_argmax,
    prepare,
    take,
    timed_fit,
)
from ._group import check_group, fit_all, run_fits


@dataclass(repr=False)
class _Curve:
    """Arrays shared by both curves; rows are curve points, columns CV splits."""

    train_scores: np.ndarray
    validation_scores: np.ndarray
    train_losses: np.ndarray
    validation_losses: np.ndarray
    fit_times: np.ndarray
    score_name: str
    loss_name: str
    baseline_loss: float | None = None
    baseline_score: float | None = None

    @property
    def n_splits(self):
        return self.train_scores.shape[1]

    def mean(self, what):
        """Mean over the CV splits of ``what`` (e.g. ``"validation_losses"``), shape (n_points,)."""
        return getattr(self, what).mean(axis=1)

    def _table(self, label, values):
        w = max(16, len(label), *(len(str(v)) for v in values))
        rows = [f"{label:>{w}} | train score  val score | train loss   val loss | fit s"]
        if self.baseline_loss is not None:
            score = "" if self.baseline_score is None else f"{self.baseline_score:.4f}"
            rows.append(f"{'constant':>{w}} | {'':11} {score:>10} | {'':10} "
                        f"{fmt(self.baseline_loss):>10} |")
        for k, v in enumerate(values):
            rows.append(
                f"{v!s:>{w}} | {self.train_scores[k].mean():11.4f} "
                f"{self.validation_scores[k].mean():10.4f} | "
                f"{fmt(self.train_losses[k].mean()):>10} "
                f"{fmt(self.validation_losses[k].mean()):>10} | {self.fit_times[k].mean():5.2f}"
            )
        return "\n".join(rows)


@dataclass(repr=False)
class LearningCurve(_Curve):
    """Result of :func:`learning_curve`.

    Attributes
    ----------
    train_sizes : ndarray of shape (n_sizes,), int
        Absolute numbers of training samples.
    baseline_loss, baseline_score : float or None
        The validation loss and score of a constant predictor fitted on each training
        fold (majority class, or mean), averaged over the splits; the ``constant`` row
        of the table. None where not defined (multi-output classes, other scorings).
    train_scores, validation_scores : ndarray of shape (n_sizes, n_splits)
        Score (``scoring``; default: the estimator's ``score``) on the training subset and
        on the validation fold.
    train_losses, validation_losses : ndarray of shape (n_sizes, n_splits)
        Log-loss (classifiers with ``predict_proba``), 0-1 error (other classifiers) or mse.
    fit_times : ndarray of shape (n_sizes, n_splits)
        Seconds per fit.
    score_name, loss_name : str
    """

    train_sizes: np.ndarray = None

    def __str__(self):
        return (f"learning curve ({self.n_splits} splits; score {self.score_name}, loss "
                f"{self.loss_name})\n" + self._table("train size", self.train_sizes))

    __repr__ = __str__


@dataclass(repr=False)
class ValidationCurve(_Curve):
    """Result of :func:`validation_curve`.

    Attributes
    ----------
    param_name : str
    param_range : list
        The values tried, as given (tuples such as ``hidden_layer_sizes`` stay tuples).
    train_scores, validation_scores, train_losses, validation_losses, fit_times
        ndarray of shape (n_values, n_splits), as in :class:`LearningCurve`.
    score_name, loss_name : str
    baseline_loss, baseline_score : float or None
        As in :class:`LearningCurve`.
    """

    param_name: str = ""
    param_range: list = None

    def best(self, by="validation_losses"):
        """The value with the best mean ``by``: lowest for losses, highest for scores.

        Ties go to the value listed last, so list regularization strengths in increasing
        order to prefer the stronger one.
        """
        if by not in ("validation_losses", "validation_scores"):
            raise ValueError(f"by must be 'validation_losses' or 'validation_scores', got {by!r}")
        m = self.mean(by)
        m = -m if by == "validation_scores" else m
        k = len(m) - 1 - int(np.argmin(m[::-1]))
        return self.param_range[k]

    def __str__(self):
        return (f"validation curve over {self.param_name} ({self.n_splits} splits; score "
                f"{self.score_name}, loss {self.loss_name})\n"
                + self._table(param_label(self.param_name), self.param_range))

    __repr__ = __str__


def _resolve_cv(cv, estimator, y, random_state):
    # An int means (Stratified)KFold; shuffled only when random_state is given, as in
    # scikit-learn, so that the default split is deterministic.
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv must be >= 2 folds, got {cv}")
        cls = StratifiedKFold if is_classifier(estimator) and y.ndim == 1 else KFold
        if random_state is None:
            return cls(n_splits=int(cv))
        ss = as_seed_sequence(random_state)
        return cls(n_splits=int(cv), shuffle=True, random_state=derived_int(ss, 0))
    return check_cv(cv, y, classifier=is_classifier(estimator))


def _scores(est, X, y, train, test, scorer, labels):
    """``(train score, validation score, train loss, validation loss)`` of a fitted ``est``
    on rows ``train`` and ``test``.

    ``scorer`` None means accuracy for classifiers known to predict the argmax of their
    probabilities: both numbers then come from one ``predict_proba`` per set.
    """
    out = []
    with one_blas_thread():
        for rows in (train, test):
            Xs, ys = take(X, rows), y[rows]
            if scorer is None:
                proba = full_proba(est, Xs, labels)
                out.append((float(np.mean(labels[proba.argmax(axis=1)] == ys)),
                             log_loss_of(ys, proba, labels)))
            else:
                out.append((float(scorer(est, Xs, ys)), model_loss(est, Xs, ys, labels)))
    (s_tr, l_tr), (s_te, l_te) = out
    return s_tr, s_te, l_tr, l_te


def _fit_score(estimator, item, X, y, scorer, labels):
    """Fit a fresh clone with ``item = (params, train, test)`` on rows ``train``; score
    and loss on them and on rows ``test``, and the fit's seconds."""
    params, train, test = item
    caught = []
    with capture_warnings(caught):
        est = prepare(estimator, params)
        fit_time = timed_fit(est, take(X, train), y[train])
        scores = _scores(est, X, y, train, test, scorer, labels)
    return (*scores, fit_time), caught


def _fit_score_group(estimator, items, X, y, scorer, labels, n_threads):
    """The fits ``items`` (see :func:`_fit_score`) as one group."""
    fits = [(params, train, None) for params, train, _ in items]
    out = []
    for (est, seconds, caught), (_, train, test) in zip(
            fit_all(estimator, fits, X, y, n_threads), items):
        with capture_warnings(caught):
            out.append(((*_scores(est, X, y, train, test, scorer, labels), seconds), caught))
    return out


def score_fits(estimator, items, X, y, scorer, labels, n_jobs, progress, desc, group=True):
    """``(train score, validation score, train loss, validation loss, seconds)`` of a fit
    per ``(params, train, test)`` of ``items``, nnopt_fast's MLPs as a group."""
    return run_fits(estimator, list(items), _fit_score, _fit_score_group,
                    (X, y, scorer, labels), n_jobs, progress, desc, group)


def _prepare_inputs(estimator, X, y, scoring):
    check_estimator(estimator)
    n = n_samples_of(X)
    y = as_target(y, n)
    labels = np.unique(y) if is_classifier(estimator) else None
    one_pass = (scoring in (None, "accuracy") and is_classifier(estimator) and y.ndim == 1
                and predicts_argmax(estimator))
    scorer = None if one_pass else check_scoring(estimator, scoring=scoring)
    if scoring is None:
        score_name = "accuracy" if is_classifier(estimator) else "r2"
    else:
        score_name = scoring if isinstance(scoring, str) else getattr(scoring, "__name__",
                                                                      "scoring")
    return n, y, scorer, labels, score_name


def _baselines(estimator, splits, y, labels, score_name):
    """The constant predictor's validation loss and score, in the curve's own terms."""
    classifier = is_classifier(estimator)
    if classifier and y.ndim != 1:
        return None, None
    base = mean_baseline(splits, y, classifier, labels)
    loss = {"log_loss": base.loss, "zero_one": base.error, "mse": base.loss}[
        loss_name(estimator)]
    score = base.score if score_name == ("accuracy" if classifier else "r2") else None
    return loss, score


def _reshape(results, n_points, n_splits):
    arr = np.array(results, dtype=np.float64).reshape(n_points, n_splits, 5)
    return [arr[:, :, k] for k in range(5)]


def learning_curve(estimator, X, y, train_sizes=(0.1, 0.325, 0.55, 0.775, 1.0), cv=5,
                   n_jobs=None, random_state=None, *, scoring=None, progress=False,
                   group=True):
    """Scores and losses on growing training subsets, with every fit in parallel.

    For each CV split and each size n_k, a clone is fitted on the first n_k rows of the
    split's training fold (shuffled first when ``random_state`` is given; the subsets are
    nested) and evaluated on that subset and on the validation fold.

    Parameters
    ----------
    estimator : scikit-learn compatible estimator
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    train_sizes : sequence of float or int, default=(0.1, 0.325, 0.55, 0.775, 1.0)
        Floats in (0, 1] are fractions of the training fold; ints are sample counts.
    cv : int, cross-validation splitter or iterable of (train, test) index arrays, default=5
        An int gives StratifiedKFold for classifiers and KFold otherwise.
    n_jobs : int or None, default=None
        joblib's ``n_jobs``; any joblib backend runs the fits (Dask included). The fits
        of nnopt_fast's MLPs train as one group (each subset being its rows of X), on
        ``n_jobs`` threads of this process under joblib's local backends (None: every
        core), as joblib tasks of groups under the others.
    random_state : None, int or numpy.random.SeedSequence, default=None
        If given, shuffles the folds of an int ``cv`` and the training rows before the
        subsets are taken. The estimator's own ``random_state`` is left as it is.
    scoring : str, callable or None, default=None
        scikit-learn scoring; None uses the estimator's ``score`` (accuracy / R²).
    progress : bool, default=False
        Show a tqdm progress bar.
    group : bool, default=True
        Train the fits of nnopt_fast's MLPs as one group: the same numbers as fitting
        one clone per joblib task (``group=False``, the path of other estimators), faster.

    Returns
    -------
    LearningCurve
    """
    n, y, scorer, labels, score_name = _prepare_inputs(estimator, X, y, scoring)
    splits = list(_resolve_cv(cv, estimator, y, random_state).split(np.zeros((n, 1)), y))
    n_train = min(len(tr) for tr, _ in splits)
    sizes = []
    for s in np.atleast_1d(np.asarray(train_sizes)).tolist():
        if isinstance(s, float):
            if not 0.0 < s <= 1.0:
                raise ValueError(f"train_sizes fractions must be in (0, 1], got {s}")
            s = max(1, int(np.floor(s * n_train)))
        elif not 1 <= s <= n_train:
            raise ValueError(f"train_sizes counts must be in [1, {n_train}] (the smallest "
                             f"training fold), got {s}")
        sizes.append(int(s))
    sizes = np.unique(sizes)
    if random_state is not None:
        rng = np.random.default_rng(derived_int(as_seed_sequence(random_state), 1))
        splits = [(rng.permutation(tr), te) for tr, te in splits]
    results = score_fits(estimator, [(None, tr[:m], te) for m in sizes for tr, te in splits],
                         X, y, scorer, labels, n_jobs, progress, "learning curve",
                         check_group(group))
    ts, vs, tl, vl, ft = _reshape(results, len(sizes), len(splits))
    base_loss, base_score = _baselines(estimator, splits, y, labels, score_name)
    return LearningCurve(train_scores=ts, validation_scores=vs, train_losses=tl,
                         validation_losses=vl, fit_times=ft, score_name=score_name,
                         loss_name=loss_name(estimator), baseline_loss=base_loss,
                         baseline_score=base_score, train_sizes=sizes)


def validation_curve(estimator, X, y, param_name, param_range, cv=5, n_jobs=None, *,
                     scoring=None, random_state=None, progress=False, group=True):
    """Scores and losses for every value of one constructor parameter, fitted in parallel.

    Parameters
    ----------
    estimator : scikit-learn compatible estimator
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    param_name : str
        Any parameter ``set_params`` accepts: ``alpha``, ``dropout``, ``l1``,
        ``hidden_layer_sizes``, ``mlp__alpha`` in a Pipeline, ...
    param_range : sequence
        The values, kept as given (a list of tuples for ``hidden_layer_sizes``).
    cv : int, cross-validation splitter or iterable of (train, test) index arrays, default=5
    n_jobs : int or None, default=None
        joblib's ``n_jobs``; any joblib backend runs the fits (Dask included), and the
        fits of nnopt_fast's MLPs train as one group (see :func:`learning_curve`).
    scoring : str, callable or None, default=None
        scikit-learn scoring; None uses the estimator's ``score``.
    random_state : None, int or numpy.random.SeedSequence, default=None
        Shuffles the folds of an int ``cv`` when given. The estimator's ``random_state`` is
        left as it is: fix it to compare values on equal terms.
    progress : bool, default=False
        Show a tqdm progress bar.
    group : bool, default=True
        As in :func:`learning_curve`. Any parameter may vary, the architecture too
        (``hidden_layer_sizes``): every model of a group has its own plan.

    Returns
    -------
    ValidationCurve
    """
    n, y, scorer, labels, score_name = _prepare_inputs(estimator, X, y, scoring)
    if not isinstance(param_name, str):
        raise TypeError(f"param_name must be a str, got {type(param_name).__name__}")
    if param_name not in estimator.get_params(deep=True):
        raise ValueError(f"param_name {param_name!r} is not a parameter of "
                         f"{type(estimator).__name__}")
    param_range = list(param_range)
    if not param_range:
        raise ValueError("param_range must hold at least one value")
    splits = list(_resolve_cv(cv, estimator, y, random_state).split(np.zeros((n, 1)), y))
    results = score_fits(estimator, [({param_name: v}, tr, te) for v in param_range
                                     for tr, te in splits], X, y, scorer, labels, n_jobs,
                         progress, f"validation curve ({param_name})", check_group(group))
    ts, vs, tl, vl, ft = _reshape(results, len(param_range), len(splits))
    base_loss, base_score = _baselines(estimator, splits, y, labels, score_name)
    return ValidationCurve(train_scores=ts, validation_scores=vs, train_losses=tl,
                           validation_losses=vl, fit_times=ft, score_name=score_name,
                           loss_name=loss_name(estimator), baseline_loss=base_loss,
                           baseline_score=base_score, param_name=param_name,
                           param_range=param_range)


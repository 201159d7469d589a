"""Bias-variance decomposition over bootstrap training sets, run in parallel through joblib."""

import time
from dataclasses import dataclass, field

import numpy as np

from ._common import (
    as_seed_sequence,
    as_target,
    capture_warnings,
    check_estimator,
    constant_baseline,
    check_n_rounds,
    child_seeds,
    n_samples_of,
    one_blas_thread,
    prepare,
    take,
    timed_fit,
)
from ._group import check_group, fit_all, run_fits

LOSSES = ("mse", "0-1")
#: Resamples of the rounds behind :attr:`BiasVariance.bands` and ``intervals``.
N_RESAMPLES = 100
#: The terms of :attr:`BiasVariance.resampled_terms`, in order.
TERMS = ("expected_loss", "bias", "variance", "net_variance")


@dataclass(repr=False)
class BiasVariance:
    """Result of :func:`bias_variance`.

    Attributes
    ----------
    expected_loss : float
        ``mean_x mean_i L(f(x; D_i), y)``: the test loss averaged over the rounds.
    bias_squared : float
        mse: ``mean_x (f̄(x) − y)²``. 0-1: Domingos' bias ``mean_x 1[y_m(x) ≠ y]``; a
        point's 0-1 bias is 0 or 1, so its square is itself and the two names agree.
    variance : float
        mse: ``mean_x mean_i (f(x; D_i) − f̄(x))²``. 0-1: ``mean_x mean_i 1[f(x; D_i) ≠ y_m(x)]``.
    n_rounds : int
        Number of bootstrap rounds.
    loss : str
        ``"mse"`` or ``"0-1"``.
    main_prediction : ndarray of shape (n_test,) or (n_test, n_outputs)
        mse: the mean prediction f̄(x) (float64). 0-1: the mode y_m(x) of the predicted
        labels (ties go to the label first in sorted order).
    variance_unbiased, variance_biased : float or None
        0-1 only: ``mean_x V(x)·1[B(x)=0]`` and ``mean_x P_i(f=y | f≠y_m)·V(x)·1[B(x)=1]``.
        Domingos' decomposition (noise-free) holds exactly on the test set:
        ``expected_loss = bias + variance_unbiased − variance_biased``.
        Variance on biased points *lowers* the 0-1 loss. With two classes
        ``variance_biased = mean_x V(x)·1[B(x)=1]``.
    predictions : ndarray of shape (n_rounds, n_test, ...) or None
        Per-round predictions on the test set, when ``return_predictions=True``.
    fit_times : ndarray of shape (n_rounds,)
        Seconds spent in each round's ``fit``.
    wall_time : float
        Seconds for the whole call.
    baseline : float or None
        The test loss of a constant predictor fitted on the training set (its majority
        class, or its mean): a model should do better.
    bands : dict of str to (float, float)
        ``"expected_loss"``, ``"bias"`` (0-1: Domingos' bias; mse: bias²) and
        ``"net_variance"``: the 10th and 90th percentiles of each term over
        :data:`N_RESAMPLES` resamples of the rounds (drawn with replacement), i.e. how
        much it depends on which rounds were run.
    intervals : dict of str to (float, float)
        95% bootstrap confidence intervals (percentile method, the 2.5th and 97.5th
        percentiles over the same resamples) of ``"expected_loss"``, ``"bias"``,
        ``"variance"`` and ``"net_variance"``; :meth:`interval` gives other levels.
    resampled_terms : ndarray of shape (N_RESAMPLES, 4) or (0, 4)
        Those four terms for each resample of the rounds (none with a single round).
    """

    expected_loss: float
    bias_squared: float
    variance: float
    n_rounds: int
    loss: str
    main_prediction: np.ndarray
    variance_unbiased: float | None = None
    variance_biased: float | None = None
    predictions: np.ndarray | None = None
    fit_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wall_time: float = 0.0
    baseline: float | None = None
    bands: dict = field(default_factory=dict)
    intervals: dict = field(default_factory=dict)
    resampled_terms: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    def interval(self, term, level=0.95):
        """The bootstrap confidence interval of ``term`` (a key of :attr:`intervals`) at
        ``level``: its ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles over the
        resamples of the rounds; ``(nan, nan)`` with a single round."""
        if term not in TERMS:
            raise ValueError(f"term must be one of {TERMS}, got {term!r}")
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        if not len(self.resampled_terms):
            return (np.nan, np.nan)
        lo, hi = np.percentile(self.resampled_terms[:, TERMS.index(term)],
                               [50 * (1 - level), 50 * (1 + level)])
        return (float(lo), float(hi))

    @property
    def bias(self):
        """Domingos' 0-1 bias (= ``bias_squared``); None for mse, where only bias² is defined."""
        return self.bias_squared if self.loss == "0-1" else None

    @property
    def net_variance(self):
        """mse: ``variance``; 0-1: ``variance_unbiased − variance_biased`` (Domingos)."""
        if self.loss == "0-1":
            return self.variance_unbiased - self.variance_biased
        return self.variance

    def __str__(self):
        base = "" if self.baseline is None else \
            f"; a constant predictor's loss {self.baseline:.4g}"
        if self.loss == "mse":
            return (
                f"bias-variance (mse, {self.n_rounds} rounds): expected loss "
                f"{self.expected_loss:.6g} = bias² {self.bias_squared:.6g} + variance "
                f"{self.variance:.6g}{base}"
            )
        return (
            f"bias-variance (0-1, Domingos, {self.n_rounds} rounds): expected loss "
            f"{self.expected_loss:.4f} = bias {self.bias_squared:.4f} + net variance "
            f"{self.net_variance:.4f} (variance {self.variance:.4f}: "
            f"{self.variance_unbiased:.4f} on unbiased points − "
            f"{self.variance_biased:.4f} on biased points){base}"
        )

    __repr__ = __str__


def _check_loss(loss):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return loss


def _bootstrap(boot_seq, n):
    """Round rows: n draws with replacement from the round's seed."""
    return np.random.default_rng(boot_seq).integers(0, n, size=n)


def _predict(est, X_test):
    with one_blas_thread():
        return np.asarray(est.predict(X_test))


def _fit_predict(estimator, item, X_train, y_train, X_test):
    """One round: fit a fresh clone on a bootstrap resample, predict the test set.

    ``item`` is ``(params, bootstrap seed, estimator seed)``.
    """
    params, boot_seq, seed = item
    idx = _bootstrap(boot_seq, n_samples_of(X_train))
    est = prepare(estimator, params, seed)
    caught = []
    with capture_warnings(caught):
        fit_time = timed_fit(est, take(X_train, idx), y_train[idx])
        pred = _predict(est, X_test)
    return (pred, fit_time), caught


def _fit_predict_group(estimator, items, X_train, y_train, X_test, n_threads):
    """The rounds ``items`` (see :func:`_fit_predict`) as one group of fits."""
    n = n_samples_of(X_train)
    fits = [(params, _bootstrap(boot, n), seed) for params, boot, seed in items]
    out = []
    for est, seconds, caught in fit_all(estimator, fits, X_train, y_train, n_threads):
        with capture_warnings(caught):
            out.append(((_predict(est, X_test), seconds), caught))
    return out


def decompose(predictions, y_test, loss):
    """Decompose stacked predictions into expected loss, bias (squared) and variance.

    Parameters
    ----------
    predictions : ndarray of shape (n_rounds, n_test) or (n_rounds, n_test, n_outputs)
        Round ``i``'s predictions of the test set. mse needs numbers; 0-1 takes labels of
        any dtype (strings included) and needs 1-D predictions per round.
    y_test : ndarray of shape (n_test,) or (n_test, n_outputs)
        True targets.
    loss : {"mse", "0-1"}

    Returns
    -------
    dict
        The fields of :class:`BiasVariance` except n_rounds, predictions and times.
    """
    _check_loss(loss)
    P = np.asarray(predictions)
    y = np.asarray(y_test)
    if loss == "mse":
        if P.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
            raise TypeError(
                "loss='mse' needs numeric targets and predictions; use loss='0-1' for labels"
            )
        P = P.astype(np.float64, copy=False).reshape(P.shape[0], *y.shape)
        y = y.astype(np.float64, copy=False)
        f_bar = P.mean(axis=0)
        return dict(
            expected_loss=float(np.mean((P - y) ** 2)),
            bias_squared=float(np.mean((f_bar - y) ** 2)),
            variance=float(np.mean((P - f_bar) ** 2)),
            main_prediction=f_bar,
        )
    if y.ndim != 1 or P.ndim != 2:
        raise ValueError(
            "loss='0-1' needs one label per sample: y_test of shape (n_test,), got "
            f"{y.shape}, predictions per round {P.shape[1:]}"
        )
    n_rounds, n_test = P.shape
    labels, codes = np.unique(np.concatenate([P.ravel(), y]), return_inverse=True)
    pred_codes = codes[: P.size].reshape(n_rounds, n_test)
    y_codes = codes[P.size:]
    counts = np.zeros((n_test, len(labels)), dtype=np.int64)
    np.add.at(counts, (np.broadcast_to(np.arange(n_test), P.shape), pred_codes), 1)
    main = counts.argmax(axis=1)  # ties: the first label in sorted order
    B = (main != y_codes).astype(np.float64)
    V = 1.0 - counts[np.arange(n_test), main] / n_rounds
    # P(f = y | f ≠ y_m) on biased points; there y ≠ y_m so "f = y" already implies "f ≠ y_m".
    hit = counts[np.arange(n_test), y_codes] / n_rounds
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(V > 0, hit / np.where(V > 0, V, 1.0), 0.0)
    return dict(
        expected_loss=float(np.mean(P != y)),
        bias_squared=float(B.mean()),
        variance=float(V.mean()),
        main_prediction=labels[main],
        variance_unbiased=float(np.mean(V * (1.0 - B))),
        variance_biased=float(np.mean(c * V * B)),
    )


def _validate(estimator, X_train, y_train, X_test, y_test, n_rounds, loss):
    check_estimator(estimator)
    _check_loss(loss)
    n_rounds = check_n_rounds(n_rounds)
    y_train = as_target(y_train, n_samples_of(X_train, "X_train"), "y_train")
    y_test = as_target(y_test, n_samples_of(X_test, "X_test"), "y_test")
    if len(y_train) < 2:
        raise ValueError(f"X_train needs at least 2 samples to resample, got {len(y_train)}")
    return y_train, y_test, n_rounds


def _resampled_terms(preds, y_test, loss, counts):
    """The four :data:`TERMS` for each resample of the rounds, as :func:`decompose` finds
    them on that resample, from per-round sums: ``counts[s, i]`` is how often resample
    ``s`` drew round ``i``, and a resample's sums are one matrix product away."""
    R = preds.shape[0]
    W = counts.astype(np.float64)
    if loss == "mse":
        y = np.asarray(y_test, dtype=np.float64)
        P = preds.astype(np.float64).reshape(R, *y.shape)
        centre = P.mean(axis=0)  # variance is shift-free: keep the sums small
        Pc, yc = (P - centre).reshape(R, -1), (y - centre).reshape(-1)
        expected = W @ ((P - y) ** 2).reshape(R, -1).mean(axis=1) / R
        F = W @ Pc / R  # each resample's mean prediction, minus the centre
        bias = ((F - yc) ** 2).mean(axis=1)
        variance = np.maximum(W @ (Pc ** 2).mean(axis=1) / R - (F ** 2).mean(axis=1), 0.0)
        return np.column_stack([expected, bias, variance, variance])
    n_test, S = preds.shape[1], len(counts)
    labels, codes = np.unique(np.concatenate([preds.ravel(), y_test]), return_inverse=True)
    pred_codes, y_codes = codes[:preds.size].reshape(R, n_test), codes[preds.size:]
    # votes[s, c, x]: how many of resample s's rounds predict label c at x, one product
    # of the rounds' one-hot predictions (exact integers in float32).
    onehot = np.zeros((R, len(labels) * n_test), dtype=np.float32)
    onehot[np.arange(R)[:, None], pred_codes * n_test + np.arange(n_test)] = 1.0
    votes = (counts.astype(np.float32) @ onehot).reshape(S, len(labels), n_test)
    top, main = votes[:, 0].copy(), np.zeros((S, n_test), dtype=np.int64)
    for c in range(1, len(labels)):  # ties go to the first label, as decompose's argmax
        np.copyto(main, c, where=votes[:, c] > top)
        np.maximum(top, votes[:, c], out=top)
    B = (main != y_codes).astype(np.float64)
    V = 1.0 - top.astype(np.float64) / R
    hit = votes.reshape(S, -1)[:, y_codes * n_test + np.arange(n_test)].astype(np.float64) / R
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(V > 0, hit / np.where(V > 0, V, 1.0), 0.0)
    expected = W @ (pred_codes != y_codes).mean(axis=1) / R
    unbiased, biased = (V * (1.0 - B)).mean(axis=1), (c * V * B).mean(axis=1)
    return np.column_stack([expected, B.mean(axis=1), V.mean(axis=1), unbiased - biased])


def _resamples(preds, y_test, loss):
    """:data:`N_RESAMPLES` resamples of the rounds (drawn with replacement, from a fixed
    seed: the same rounds give the same intervals) and their terms."""
    R = preds.shape[0]
    if R < 2:
        return np.zeros((0, len(TERMS)))
    draws = np.random.default_rng(0).integers(0, R, size=(N_RESAMPLES, R))
    counts = np.zeros((N_RESAMPLES, R), dtype=np.int64)
    np.add.at(counts, (np.arange(N_RESAMPLES)[:, None], draws), 1)
    return _resampled_terms(preds, y_test, loss, counts)


def _percentiles(terms, names, q):
    if not len(terms):
        return {}
    lo, hi = np.percentile(terms[:, [TERMS.index(t) for t in names]], q, axis=0)
    return {name: (float(a), float(b)) for name, a, b in zip(names, lo, hi)}


def _baseline(y_train, y_test, loss):
    if y_test.ndim != 1 and loss == "0-1":
        return None
    return constant_baseline(y_train, y_test, classifier=loss == "0-1").error


def _assemble(rounds, y_train, y_test, loss, n_rounds, return_predictions, t0):
    preds = np.stack([p for p, _ in rounds])
    parts = decompose(preds, y_test, loss)
    terms = _resamples(preds, y_test, loss)
    return BiasVariance(
        n_rounds=n_rounds,
        loss=loss,
        predictions=preds if return_predictions else None,
        fit_times=np.array([t for _, t in rounds]),
        wall_time=time.perf_counter() - t0,
        baseline=_baseline(y_train, y_test, loss),
        bands=_percentiles(terms, ("expected_loss", "bias", "net_variance"), [10, 90]),
        intervals=_percentiles(terms, TERMS, [2.5, 97.5]),
        resampled_terms=terms,
        **parts,
    )


def bias_variance(estimator, X_train, y_train, X_test, y_test, n_rounds=50, loss="mse",
                  random_state=None, n_jobs=None, return_predictions=False, *,
                  seed_estimator=True, progress=False, group=True):
    """Decompose an estimator's test loss into bias and variance over bootstrap training sets.

    Round ``i`` fits a clone of ``estimator`` on a bootstrap resample D_i of the training
    set (n draws with replacement) and predicts ``X_test``. Rounds run in parallel through
    joblib (any backend, Dask included), each fit with ``n_threads=1`` when the estimator
    has that parameter and with BLAS limited to one thread. nnopt_fast's MLPs (alone or
    ending a Pipeline) train their rounds together instead, as one group
    (``nf.train_many``'s driver, a bootstrap being the round's rows of X): each round
    ends exactly where its own fit would, so the numbers are the same, in a fraction of
    the time (see ``group``).

    mse, with ``f̄(x) = mean_i f(x; D_i)``::

        bias²         = mean_x (f̄(x) − y)²
        variance      = mean_x mean_i (f(x; D_i) − f̄(x))²
        expected_loss = mean_x mean_i (f(x; D_i) − y)²  = bias² + variance

    0-1 (Domingos 2000, noise-free): main prediction ``y_m(x)`` = most frequent predicted
    label; ``B(x) = 1[y_m(x) ≠ y]``; ``V(x) = mean_i 1[f(x; D_i) ≠ y_m(x)]``. Then exactly
    ``expected_loss = mean_x [B(x) + c(x) V(x)]`` with ``c = 1`` where ``B = 0`` and
    ``c = −P_i(f = y | f ≠ y_m)`` where ``B = 1`` (−1 with two classes); the result carries
    both parts as ``variance_unbiased`` and ``variance_biased``. So ``expected_loss`` is
    *not* ``bias + variance`` for 0-1 loss: variance on biased points helps. Labels may be
    of any type (ints, strings).

    Parameters
    ----------
    estimator : scikit-learn compatible estimator
        Cloned for every round (never fitted itself).
    X_train : array-like of shape (n_train, n_features)
    y_train : array-like of shape (n_train,) or (n_train, n_outputs)
    X_test : array-like of shape (n_test, n_features)
    y_test : array-like of shape (n_test,) or (n_test, n_outputs)
    n_rounds : int, default=50
        Number of bootstrap training sets.
    loss : {"mse", "0-1"}, default="mse"
        "mse" for regressors (numeric targets), "0-1" for classifiers.
    random_state : None, int or numpy.random.SeedSequence, default=None
        Seeds round ``i`` through ``SeedSequence(random_state).spawn(n_rounds)[i]``: its
        bootstrap sample and (see ``seed_estimator``) the estimator's ``random_state``.
        The same int gives the same numbers whatever ``n_jobs`` or joblib backend.
    n_jobs : int or None, default=None
        joblib's ``n_jobs`` (None: the active backend's default, 1 outside a context).
        Rounds trained as a group use ``n_jobs`` threads of this process under joblib's
        local backends (None: every core), and go as joblib tasks, each a group of
        rounds, to any other backend (Dask, ...).
    return_predictions : bool, default=False
        Keep the per-round predictions in the result.
    seed_estimator : bool, default=True
        Give each round's clone its own ``random_state`` drawn from the round's seed, so the
        variance covers initialization as well as the data, and results are reproducible.
        False keeps the estimator's own ``random_state`` (reproducible only if it is an int).
    progress : bool, default=False
        Show a tqdm progress bar.
    group : bool, default=True
        Train the rounds of nnopt_fast's MLPs as one group. False fits one clone per
        joblib task, as for any other estimator (the same numbers, slower).

    Returns
    -------
    BiasVariance

    Examples
    --------
    >>> from sklearn.neural_network import MLPRegressor
    >>> r = nf.bias_variance(MLPRegressor(max_iter=200), Xtr, ytr, Xte, yte,
    ...                      n_rounds=20, loss="mse", random_state=0, n_jobs=-1)
    >>> r.expected_loss, r.bias_squared, r.variance
    """
    t0 = time.perf_counter()
    y_train, y_test, n_rounds = _validate(estimator, X_train, y_train, X_test, y_test,
                                          n_rounds, loss)
    group = check_group(group)
    seeds = child_seeds(as_seed_sequence(random_state), n_rounds)
    items = [(None, boot, est_seed if seed_estimator else None) for boot, est_seed in seeds]
    rounds = run_fits(estimator, items, _fit_predict, _fit_predict_group,
                      (X_train, y_train, X_test), n_jobs, progress, "bias-variance", group)
    return _assemble(rounds, y_train, y_test, loss, n_rounds, return_predictions, t0)

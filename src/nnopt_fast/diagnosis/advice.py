"""``nf.diagnose``: the train / check bias / check variance recipe, run and explained."""

import numbers
import textwrap
import time
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import train_test_split

from ._common import (
    as_seed_sequence,
    as_target,
    check_estimator,
    constant_baseline,
    derived_int,
    find_param,
    fmt,
    n_samples_of,
    predicts_argmax,
    take,
)
from ._group import check_group
from .curves import score_fits
from .decomposition import bias_variance
from .steps import Step, bias_steps, constant_steps, variance_steps

WIDTH = 88  # terminal width of the printed report
VERDICTS = ("good fit", "high bias", "high variance", "high bias and high variance",
            "worse than a constant predictor")


@dataclass(repr=False)
class Diagnosis:
    """Report of :func:`diagnose`; ``print(rep)`` renders it for a terminal.

    Attributes
    ----------
    estimator_name : str
    n_train, n_validation : int
        Sizes of the split used.
    error_name : str
        ``"misclassification rate"`` (classifiers) or ``"mse"`` (regressors).
    train_error, validation_error, gap : float
        Errors of one fit on the training split; ``gap = validation_error − train_error``.
    baseline_error : float
        Validation error of a constant predictor (majority class / training mean).
    baseline_train_error : float
        Its error on the training split. A model whose training error exceeds it by more
        than the tolerance failed to train, whatever the gap: its verdict is ``"worse
        than a constant predictor"``, with the target's scaling and the learning rate as
        the next steps.
    tolerance : float
        Absolute tolerance used by the verdict (``tolerance`` × ``baseline_error``).
    target_error : float or None
        The achievable error passed by the user.
    decomposition : BiasVariance
        Bias/variance split over bootstrap resamples of the training split, on the
        validation split (0-1 loss for classifiers, mse for regressors).
    high_bias, high_variance : bool
    verdict : str
        One of ``"good fit"``, ``"high bias"``, ``"high variance"``,
        ``"high bias and high variance"``, ``"worse than a constant predictor"``.
    reasons : list of str
        The comparisons behind the verdict, with their numbers.
    steps : list of Step
        The recipe's next steps, in order.
    suggested_params : dict
        The parameters of the most promising tried step (empty for a good fit).
    validation_curves : dict of str to ValidationCurve
        Regularization sweeps run for high variance, keyed by the ``set_params`` name
        (``"alpha"``, ``"dropout"``; ``"mlp__alpha"`` in a Pipeline).
    decomposition_after : BiasVariance or None
        The decomposition rerun with the suggested regularization (``verify=True``).
    wall_time : float
        Seconds for the whole diagnosis.
    """

    estimator_name: str
    n_train: int
    n_validation: int
    error_name: str
    train_error: float
    validation_error: float
    gap: float
    baseline_error: float
    tolerance: float
    target_error: float | None
    decomposition: object
    high_bias: bool
    high_variance: bool
    verdict: str
    reasons: list
    steps: list
    suggested_params: dict
    validation_curves: dict
    decomposition_after: object = None
    wall_time: float = 0.0
    baseline_train_error: float | None = None

    @property
    def worse_than_constant(self):
        """Whether the model fits its training rows no better than a constant predictor."""
        return self.verdict == VERDICTS[4]

    def __str__(self):
        d = self.decomposition
        w = 18
        lines = [
            f"Diagnosis of {self.estimator_name}: {self.n_train} training / "
            f"{self.n_validation} validation samples",
            f"error = {self.error_name}; the constant predictor is the training split's "
            f"{'majority class' if self.error_name != 'mse' else 'mean'}",
            "",
            f"  {'training error':<{w}} {fmt(self.train_error):<9} (constant predictor: "
            f"{fmt(self.baseline_train_error)})",
            f"  {'validation error':<{w}} {fmt(self.validation_error):<9} (constant "
            f"predictor: {fmt(self.baseline_error)})",
            f"  {'gap':<{w}} {('+' if self.gap >= 0 else '') + fmt(self.gap):<9} "
            f"(validation − training)",
        ]
        if self.target_error is not None:
            lines.append(f"  {'target error':<{w}} {self.target_error:.4f}")
        if d.loss == "mse":
            lines.append(f"  {'bias² / variance':<{w}} {fmt(d.bias_squared)} / "
                         f"{fmt(d.variance)}   (expected loss {fmt(d.expected_loss)}, "
                         f"{d.n_rounds} bootstrap rounds)")
        else:
            lines.append(f"  {'bias / variance':<{w}} {d.bias_squared:.4f} / {d.variance:.4f}"
                         f"   (Domingos 0-1 loss, {d.n_rounds} bootstrap rounds)")
            lines.append(f"  {'':<{w}} expected loss {d.expected_loss:.4f} = bias + net "
                         f"variance {d.net_variance:+.4f}")
        lines += ["", f"Verdict: {self.verdict.upper()}"]
        for r in self.reasons:
            lines += textwrap.wrap(r, WIDTH, initial_indent="  - ", subsequent_indent="    ")
        lines += ["", "Next steps, in order:"]
        for k, s in enumerate(self.steps, 1):
            lines += textwrap.wrap(f"{s.title}: {s.action}", WIDTH,
                                   initial_indent=f"  {k}. ", subsequent_indent="     ")
            if s.outcome:
                lines += textwrap.wrap(s.outcome, WIDTH, initial_indent="     -> ",
                                       subsequent_indent="        ")
        if self.suggested_params:
            lines += ["", f"Suggested parameters: {self._fmt_params(self.suggested_params)}"]
        if self.decomposition_after is not None:
            a = self.decomposition_after
            lines.append(
                f"  with them: variance {d.variance:.4g} -> {a.variance:.4g}, bias "
                f"{d.bias_squared:.4g} -> {a.bias_squared:.4g}, expected loss "
                f"{d.expected_loss:.4g} -> {a.expected_loss:.4g}")
        lines.append(f"({self.wall_time:.1f} s)")
        return "\n".join(lines)

    @staticmethod
    def _fmt_params(params):
        return ", ".join(f"{k}={v!r}" for k, v in params.items())

    __repr__ = __str__


def _errors(results, classifier):
    """(train_errors, validation_errors) from ``_fit_score`` outputs."""
    arr = np.array(results, dtype=np.float64)
    if classifier:  # _fit_score scored with accuracy
        return 1.0 - arr[:, 0], 1.0 - arr[:, 1]
    return arr[:, 2], arr[:, 3]


def diagnose(estimator, X, y, target_error=None, *, validation_size=0.25, n_rounds=8,
             tolerance=0.05, alpha_range=None, dropout_range=None, width_factor=4,
             epochs_factor=3, verify=True, random_state=None, n_jobs=None, progress=False,
             group=True):
    """Diagnose bias and variance the way the classic recipe does, and try its next steps.

    1. Fit on a training split; measure training and validation error and their gap.
    2. Decompose the validation loss into bias and variance over ``n_rounds`` bootstrap
       resamples of the training split (:func:`bias_variance`).
    3. High bias if the training error exceeds the achievable error by more than the
       tolerance; high variance if the gap exceeds it.
    4. High bias: fit a ``width_factor`` times wider network, ``epochs_factor`` times more
       epochs (and Adam when the solver is plain SGD) and report the training error each
       reached. High variance: the validation error with half the training data (does more
       data help?), validation curves over ``alpha`` and ``dropout`` (where the estimator has
       them) with the best value, and, if ``verify``, the decomposition again with it.

    Parameters
    ----------
    estimator : scikit-learn compatible estimator
        Never fitted itself; clones are. Works with nnopt_fast's and scikit-learn's MLPs.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    target_error : float or None, default=None
        The achievable error (e.g. human-level error or the known noise level) in the
        report's units: misclassification rate for classifiers, mse for regressors.
        None compares the training error with 0, i.e. asks whether the network can fit its
        training set; the report says so.
    validation_size : float, default=0.25
        Fraction of the samples held out (stratified for classifiers).
    n_rounds : int, default=8
        Bootstrap rounds of the decomposition.
    tolerance : float, default=0.05
        How much excess error counts as "high", as a fraction of the error of a constant
        predictor (so it means the same for 10 classes, 2 classes or any regression scale).
    alpha_range, dropout_range : sequence of float or None
        Values tried for high variance; default (1e-4 … 10) and (0.1, 0.2, 0.3, 0.5).
        Parameters the estimator lacks are skipped.
    width_factor, epochs_factor : int, default=4 and 3
        How much wider / longer the high-bias probes go.
    verify : bool, default=True
        Rerun the decomposition with the suggested regularization.
    random_state : None or int, default=None
        Seeds the split, the bootstrap rounds and, when the estimator's own ``random_state``
        is None, the estimator's initialization.
    n_jobs : int or None, default=None
        joblib's ``n_jobs`` for every batch of fits (nnopt_fast's MLPs: the threads of
        their groups, see :func:`bias_variance`).
    progress : bool, default=False
        Show tqdm progress bars.
    group : bool, default=True
        Train each batch of fits of nnopt_fast's MLPs as one group (the same numbers as
        one fit per joblib task, ``group=False``).

    Returns
    -------
    Diagnosis
    """
    t0 = time.perf_counter()
    check_estimator(estimator)
    group = check_group(group)
    n = n_samples_of(X)
    y = as_target(y, n)
    for name, value in (("validation_size", validation_size), ("tolerance", tolerance)):
        if not isinstance(value, numbers.Real) or not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    if target_error is not None and (not isinstance(target_error, numbers.Real)
                                     or target_error < 0):
        raise ValueError(f"target_error must be None or a non-negative number, "
                         f"got {target_error!r}")
    ss = as_seed_sequence(random_state)
    classifier = is_classifier(estimator)
    if classifier and y.ndim != 1:
        raise ValueError("diagnose supports single-output classifiers only; y must be 1-D")

    stratify = None
    if classifier:
        _, counts = np.unique(y, return_counts=True)
        stratify = y if counts.min() >= 2 else None
    train_idx, val_idx = train_test_split(np.arange(n), test_size=validation_size,
                                          stratify=stratify, random_state=derived_int(ss, 0))
    split = [(train_idx, val_idx)]
    labels = np.unique(y) if classifier else None
    if classifier:  # None: accuracy and log-loss from one predict_proba (see _fit_score)
        scorer = None if predicts_argmax(estimator) else get_scorer("accuracy")
    else:
        scorer = get_scorer("r2")
    base = {}
    rs_key = find_param(estimator, "random_state")
    if rs_key is not None and estimator.get_params(deep=True)[rs_key] is None:
        base[rs_key] = derived_int(ss, 1)

    def evaluate(configs, desc, model=None, prefix=""):
        """Errors of fits of ``model`` (default: the estimator) with ``params`` on rows
        ``tr``; ``prefix`` names the estimator inside ``model`` (its own seed key)."""
        seeds = {prefix + k: v for k, v in base.items()}
        results = score_fits(estimator if model is None else model,
                             [({**seeds, **params}, tr, val_idx) for params, tr in configs],
                             X, y, scorer, labels, n_jobs, progress, desc, group)
        return _errors(results, classifier)

    tr_err, va_err = evaluate([({}, train_idx)], "diagnose: fit")
    train_error, validation_error = float(tr_err[0]), float(va_err[0])
    gap = validation_error - train_error

    X_tr, y_tr, X_va, y_va = take(X, train_idx), y[train_idx], take(X, val_idx), y[val_idx]
    loss = "0-1" if classifier else "mse"
    bv_seed = derived_int(ss, 2)
    decomposition = bias_variance(estimator, X_tr, y_tr, X_va, y_va, n_rounds=n_rounds,
                                  loss=loss, random_state=bv_seed, n_jobs=n_jobs,
                                  progress=progress, group=group)

    baseline = constant_baseline(y_tr, y_va, classifier, labels).error
    baseline_train = constant_baseline(y_tr, y_tr, classifier, labels).error
    error_name = "misclassification rate" if classifier else "mse"
    tol = tolerance * baseline
    reference = 0.0 if target_error is None else float(target_error)
    avoidable = train_error - reference
    high_bias = avoidable > tol
    high_variance = gap > tol
    # Worse by more than the tolerance: a network can always learn the constant (its
    # output biases), so this is a failure of training, not of capacity.
    worse = train_error > baseline_train + tol
    verdict = VERDICTS[4] if worse else VERDICTS[int(high_bias) + 2 * int(high_variance)]

    reasons = []
    if worse:
        reasons.append(
            f"fit: the training error {fmt(train_error)} is worse than the constant "
            f"predictor's {fmt(baseline_train)} on the same rows, by more than the "
            f"tolerance {fmt(tol)}: any network can learn that constant, so training "
            f"failed, and bias and variance say little yet. "
            + ("Unscaled targets " if not classifier else "Unscaled inputs ")
            + "or a learning rate far off are the usual causes.")
    if target_error is None:
        reasons.append(
            f"bias: no target_error given, so the training error is compared with 0 (can the "
            f"network fit its own training set?): {fmt(train_error)} "
            f"{'>' if high_bias else '<='} tolerance {fmt(tol)} "
            f"({tolerance:g} x the constant predictor's {fmt(baseline)}). If the task has an "
            f"irreducible error (noisy labels, human-level error), pass it as target_error.")
    else:
        reasons.append(
            f"bias: avoidable bias = training error − target = {fmt(train_error)} − "
            f"{fmt(reference)} = {fmt(avoidable)} {'>' if high_bias else '<='} tolerance "
            f"{fmt(tol)} ({tolerance:g} x the constant predictor's {fmt(baseline)})")
    reasons.append(
        f"variance: gap = validation − training = {fmt(validation_error)} − "
        f"{fmt(train_error)} = {fmt(gap)} {'>' if high_variance else '<='} tolerance "
        f"{fmt(tol)}")
    d = decomposition
    if loss == "mse":
        share = d.variance / d.expected_loss if d.expected_loss > 0 else 0.0
        split_text = (f"bias² {fmt(d.bias_squared)} + variance {fmt(d.variance)} "
                      f"({100 * share:.0f}% of the expected loss {fmt(d.expected_loss)})")
    else:
        split_text = (f"bias {fmt(d.bias_squared)}, variance {fmt(d.variance)}; expected "
                      f"loss {fmt(d.expected_loss)} = bias + net variance "
                      f"{fmt(d.net_variance)} (Domingos)")
    reasons.append(f"decomposition over {n_rounds} bootstrap fits: {split_text}")

    steps, suggested, curves, after = [], {}, {}, None
    if worse:
        steps, suggested = constant_steps(estimator, evaluate, train_idx, train_error,
                                          classifier, y_tr)
    elif high_bias:
        bsteps, probe_errors = bias_steps(estimator, evaluate, train_idx, train_error,
                                           width_factor, epochs_factor)
        steps += bsteps
        if probe_errors:
            suggested = dict(min(probe_errors, key=lambda p: p[0])[1])
    if high_variance and not worse:
        vsteps, vsuggested, curves = variance_steps(
            estimator, X, y, base, evaluate, train_idx, split, validation_error, gap,
            alpha_range, dropout_range, classifier, n_jobs, progress, group)
        steps += vsteps
        if not suggested:
            suggested = vsuggested
        if verify and vsuggested:
            after = bias_variance(clone(estimator).set_params(**vsuggested), X_tr, y_tr, X_va,
                                  y_va, n_rounds=n_rounds, loss=loss, random_state=bv_seed,
                                  n_jobs=n_jobs, progress=progress, group=group)
    if not (high_bias or high_variance or worse):
        steps.append(Step(
            "done", "bias and variance are both within tolerance: measure the error once on "
            "a held-out test set, or lower target_error / tolerance to push further."))

    return Diagnosis(
        estimator_name=_describe(estimator), n_train=len(train_idx), n_validation=len(val_idx),
        error_name=error_name, train_error=train_error, validation_error=validation_error, gap=gap,
        baseline_error=baseline, tolerance=tol, target_error=target_error,
        decomposition=decomposition, high_bias=high_bias, high_variance=high_variance,
        verdict=verdict, reasons=reasons, steps=steps, suggested_params=suggested,
        validation_curves=curves, decomposition_after=after,
        wall_time=time.perf_counter() - t0, baseline_train_error=baseline_train)


def _describe(estimator):
    steps = getattr(estimator, "steps", None)
    if steps:  # a Pipeline: name its steps
        return "Pipeline(" + " -> ".join(_describe(s) for _, s in steps) + ")"
    inner = getattr(estimator, "regressor", None)
    if inner is not None:  # a TransformedTargetRegressor: name what it wraps
        return f"{type(estimator).__name__}({_describe(inner)})"
    return type(estimator).__name__



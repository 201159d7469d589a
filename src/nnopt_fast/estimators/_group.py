"""The estimators' fits as models of a group: ``est.fit(X[rows], y[rows])`` trained by the
group driver (:func:`nnopt_fast.train.group.run_group`), with the same result.

The one interface between the estimators and the group: :func:`group_fit` turns an
unfitted estimator (nnopt_fast's MLP, or a Pipeline ending in one) and the data of its
fit into a :class:`GroupFit`, a member of a group; after the group ran,
:meth:`GroupFit.finish` makes the estimator the fitted estimator ``fit`` would have made.
Any fit the group cannot reproduce is refused (``group_fit`` returns None), and a fit
that failed in the group (a divergence) is reported as such: the caller then runs
``fit`` itself, which raises or warns exactly as it always does.
"""

import time
import warnings

import numpy as np
import scipy.sparse
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning

from ..kernels import get_backend
from ..train.group import Member, run_group
from ..train.loop import EpochDriver
from ..train.schedules import make_schedule
from ..train.state import OptimizerState, TrainState
from ._classifier import MLPClassifier
from ._errors import CHECK_ROWS, predicts_finite
from ._forward import as_rows
from ._regressor import MLPRegressor
from ._params import check_param_values
from ._reuse import Reused, reused
from ._scaling import ScalingWarning, scaling_report
from ._stochastic import (STOCHASTIC_SOLVERS, _batch_size, _config, _record_epoch,
                          _stopping_rule, optimizer_kind, shuffled)

__all__ = ["GroupFit", "final_estimator", "groupable", "group_fit", "run_members", "take"]


def take(X, idx):
    """Rows ``idx`` of ``X``: positional for DataFrames, fancy indexing otherwise."""
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if isinstance(X, list):
        return [X[i] for i in idx]
    return X[idx]


def final_estimator(est):
    """The last step of a Pipeline, or ``est`` itself."""
    steps = getattr(est, "steps", None)
    return steps[-1][1] if steps else est


def groupable(est):
    """Whether fits of ``est`` can train in a group: nnopt_fast's MLPClassifier or
    MLPRegressor (not a subclass, which may fit otherwise), alone or ending a Pipeline,
    with a stochastic solver, no early stopping, no class weights and quiet."""
    final = final_estimator(est)
    if type(final) not in (MLPClassifier, MLPRegressor):
        return False
    if getattr(est, "steps", None) is not None and type(est).__name__ != "Pipeline":
        return False
    return (final.solver in STOCHASTIC_SOLVERS and not final.early_stopping
            and not final.verbose and getattr(final, "class_weight", None) is None)


class _Data:
    """A training set as one estimator's fit validates it, shared by the fits on its
    rows: X (C order, or CSR for sparse input, never densified), the kernel targets, the labels' codes and classes."""

    def __init__(self, est, X, y):
        probe = type(est)(**est.get_params(deep=False))
        Xv, codes = probe._validate_input(X, y, False, True, None)
        self.X = as_rows(Xv)
        self.codes = codes
        self.attrs = {k: getattr(probe, k) for k in ("n_features_in_", "feature_names_in_",
                                                     "classes_", "_y_type")
                      if hasattr(probe, k)}
        self.classifier = is_classifier(est)
        self.T = probe._kernel_targets(codes, self.X.dtype) if not self.classifier else None
        self._targets = {}
        self._scaling = None

    def targets(self, est):
        """The kernel targets for ``est``'s output layer (classifiers: by its type)."""
        if not self.classifier:
            return self.T
        key = est.out_activation_
        if key not in self._targets:
            self._targets[key] = est._kernel_targets(self.codes, self.X.dtype)
        return self._targets[key]

    def scaling(self):
        if self._scaling is None:
            self._scaling = (scaling_report(self.X),)
        return self._scaling[0]


class GroupFit:
    """One estimator's fit as a member of a group (made by :func:`group_fit`).

    Attributes
    ----------
    estimator : estimator
        The estimator being fitted (a Pipeline's steps before the last are fitted).
    member : nnopt_fast.train.group.Member
    backend : module
        The backend its epochs run on.
    seconds : float
        Seconds of its fit so far: the steps before the last, then its epochs.
    """

    def __init__(self, estimator, final, data, rows, dropout, prep_seconds):
        self.estimator, self.final, self.data, self.rows = estimator, final, data, rows
        self.seconds = prep_seconds
        est = final
        for name, value in data.attrs.items():
            setattr(est, name, value)
        hidden = est._hidden_sizes()
        n_samples = data.X.shape[0] if rows is None else rows.size
        codes = data.codes if rows is None else data.codes[rows]
        layer_units = [data.X.shape[1], *hidden, est._n_outputs(codes)]
        est._random_state = reused(est).random_state(est.random_state)
        net = est._initialize(layer_units, data.X.dtype)
        kind = optimizer_kind(est)
        est._optimizer = OptimizerState(kind, est.learning_rate_init)
        if np.any(np.asarray(dropout) > 0):
            est._dropout_seed = int(est._random_state.randint(0, 2**31 - 1))
        cfg = _config(est, net, kind, _batch_size(est, n_samples), n_samples, dropout)
        self.backend = get_backend(est.backend)
        est.backend_ = getattr(self.backend, "BACKEND_NAME", est.backend)
        state = TrainState(net, cfg)
        est._optimizer.load_into(state)
        schedule = make_schedule(est.learning_rate if kind != "adam" else "constant",
                                 est.learning_rate_init, power_t=est.power_t,
                                 samples_seen=est.t_, rate=est._optimizer.learning_rate)
        self.net, self.state, self.schedule = net, state, schedule
        self.stopping = _stopping_rule(est, net, None)
        self.n_samples = n_samples
        est.n_iter_ = 0
        random_state = est._random_state
        reorder = ((lambda order: shuffled(order, random_state)) if est.shuffle
                   else (lambda order: order))
        driver = EpochDriver(cfg, state, n_samples, epochs=est.max_iter, lr=schedule,
                             reorder=reorder, on_epoch=self._on_epoch,
                             stopping=self.stopping, rows=rows,
                             data_div=est.n_outputs_ if est.out_activation_ == "identity"
                             else 1)
        self.member = Member(driver, data.X, data.targets(est), None)

    def _on_epoch(self, epoch, loss, seconds):
        _record_epoch(self.final, loss, self.n_samples)
        self.seconds += seconds
        return False

    def finish(self, error):
        """The fitted estimator after the group ran, or None when the fit did not end as
        ``fit`` ends without error (``error`` set: a divergence or a zero-weight batch;
        or weights that predict non-finite values): the caller then calls ``fit``.

        Warns as ``fit`` does: ScalingWarning (from the whole training set's scaling,
        checked once for the fits that share it) and ConvergenceWarning.
        """
        if error is not None:
            return None
        est, state = self.final, self.state
        est._optimizer.save_from(state)
        est._optimizer.learning_rate = self.schedule.rate
        est._dropout_step = state.step
        est._no_improvement_count = self.stopping.count
        est.best_loss_ = self.stopping.best
        est.coefs_, est.intercepts_ = reused(est).keep_net(self.net)
        X = self.data.X
        rows = self.rows
        check = X if rows is None else X[rows[::-(-rows.size // CHECK_ROWS)]]
        if not predicts_finite(est, self.net, check):
            return None
        report = self.data.scaling()
        name = type(est).__name__
        if report:
            warnings.warn(
                f"{name}.fit: X's columns differ wildly in scale: {report}. Gradient "
                f"descent trains an MLP poorly on unscaled inputs; standardize them, e.g. "
                f"make_pipeline(StandardScaler(), {name}()).", ScalingWarning)
        if not self.stopping.stopped and est.n_iter_ == est.max_iter:
            warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                          "optimization hasn't converged yet." % est.max_iter,
                          ConvergenceWarning)
        return self.estimator


def group_fit(estimator, X, y, rows=None, shared=None):
    """``estimator.fit(X[rows], y[rows])`` as a member of a group, or None if the group
    cannot reproduce that fit (:func:`groupable`, and binary or multiclass 1-D labels of
    which the rows hold every class).

    Parameters
    ----------
    estimator : estimator
        Unfitted, with its parameters, seed and threads set (a clone); fitted in place.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    rows : ndarray of int or None
        The fit's rows of X and y (repeats allowed: a bootstrap).
    shared : dict or None
        Validated training sets by the identity of (X, y), kept across the fits of one
        group so that X is validated and held once; a Pipeline's transformed rows are
        held once for the fits whose steps gave equal ones.

    Returns
    -------
    GroupFit or None
    """
    if not groupable(estimator):
        return None
    final = final_estimator(estimator)
    shared = {} if shared is None else shared
    hidden = final._hidden_sizes()
    dropout = final._dropout(len(hidden))
    # fit's checks of its parameters (_check_params for a stochastic solver), the
    # values that passed kept for the group's other fits.
    check_param_values(final, shared.setdefault(("params", type(final)), Reused()))
    final._check_extra_params()
    t0 = time.perf_counter()
    if final is not estimator:
        Xr = X if rows is None else take(X, rows)
        yr = np.asarray(y) if rows is None else np.asarray(y)[rows]
        Xt = estimator[:-1].fit_transform(Xr, yr) if len(estimator.steps) > 1 else Xr
        data = _shared_data(shared, final, Xt, yr, rows)
        rows = None
    else:
        key = (id(X), id(y), type(final))
        if key not in shared:
            shared[key] = (_Data(final, X, y), X, y)  # X and y kept alive with their ids
        data = shared[key][0]
    if data.classifier:
        if data.attrs.get("_y_type") not in ("binary", "multiclass"):
            return None
        codes = data.codes if rows is None else data.codes[rows]
        if np.bincount(codes, minlength=len(data.attrs["classes_"])).min() == 0:
            return None  # its fit would have other classes, hence another network
    return GroupFit(estimator, final, data, rows, dropout, time.perf_counter() - t0)


def _shared_data(shared, final, Xt, y, rows):
    """The :class:`_Data` of a Pipeline's transformed rows: one already made for equal
    rows (the same steps fitted on the same rows, e.g. another value of the final step's
    parameter), else a new one."""
    key = ("pipeline", id(rows), type(final))
    for data, _ in shared.get(key, []):
        if _same_rows(data.X, Xt):
            return data
    data = _Data(final, Xt, y)
    shared.setdefault(key, []).append((data, rows))
    return data


def _same_rows(A, B):
    """Whether the validated rows ``A`` equal the transformed rows ``B`` (either may be
    sparse; a sparse and a dense matrix never count as equal)."""
    if scipy.sparse.issparse(A) or scipy.sparse.issparse(B):
        return (scipy.sparse.issparse(A) and scipy.sparse.issparse(B)
                and A.shape == B.shape and (A != B).nnz == 0)
    return np.shape(A) == np.shape(B) and np.array_equal(A, B)


def run_members(group_fits, n_threads):
    """Train the members of ``group_fits`` (None entries skipped), one group per backend,
    on ``n_threads`` threads; returns each one's error (None: finished), to pass to its
    :meth:`GroupFit.finish`."""
    by_backend = {}
    for k, g in enumerate(group_fits):
        if g is not None:
            by_backend.setdefault(g.backend, []).append(k)
    errors = [None] * len(group_fits)
    for backend, ks in by_backend.items():
        for k, err in zip(ks, run_group(backend, [group_fits[k].member for k in ks],
                                        n_threads)):
            errors[k] = err
    return errors

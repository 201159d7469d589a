"""scikit-learn drop-in MLPClassifier / MLPRegressor trained by nnopt_fast's kernels."""

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network._multilayer_perceptron import BaseMultilayerPerceptron
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils import shuffle as _sk_shuffle
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .kernels import get_backend
from .kernels import reference as ref
from .model.mlp import MLP
from .train.loop import DivergenceError, make_config, zero_weight_error
from .train.threads import default_estimator_threads, limit_thread_pools, thread_budget
from .train.state import TrainState

__all__ = ["MLPClassifier", "MLPRegressor", "ScalingWarning", "FitDivergenceError"]

_STOCHASTIC_SOLVERS = ("sgd", "adam")
#: Above this ratio of the largest to the smallest non-zero column std, ``fit`` warns.
SCALE_RATIO_LIMIT = 1e3
#: Above this ``|mean| / std`` of a non-constant column, ``fit`` warns.
OFFSET_RATIO_LIMIT = 1e2
#: The scaling check looks at no more rows than this (an evenly strided subsample).
_SCALE_CHECK_ROWS = 2048


class ScalingWarning(UserWarning):
    """``fit`` saw input columns whose scales differ wildly (see the message for the fix)."""


class FitDivergenceError(DivergenceError, ValueError):
    """The training loss became NaN or infinite.

    A :class:`nnopt_fast.DivergenceError` that is also a ``ValueError``, which is what
    scikit-learn's MLP raises on non-finite weights. The estimator keeps the weights it
    had at the start of the failing epoch.
    """


class _OptimizerState:
    """Optimizer buffers kept between ``partial_fit`` calls (scikit-learn's ``_optimizer``)."""

    def __init__(self, kind, learning_rate):
        self.kind = kind
        self.learning_rate = float(learning_rate)
        self.velocity = self.m = self.v = None
        self.t = 0

    def load_into(self, state):
        for name in ("velocity", "m", "v"):
            saved = getattr(self, name)
            if saved is not None and saved.shape == getattr(state, name).shape:
                getattr(state, name)[...] = saved
        state.t = self.t

    def save_from(self, state):
        self.velocity, self.m, self.v = state.velocity.copy(), state.m.copy(), state.v.copy()
        self.t = state.t


def _n_threads_default():
    """Threads for one fit when ``n_threads=None`` (see the estimators' docstring)."""
    return default_estimator_threads()


def _thread_budget(n_threads):
    """Hold BLAS and OpenMP pools to ``n_threads`` while training, when that is a limit.

    The GEMMs of a backend (and of the lbfgs loss) run on a BLAS whose own pool would
    otherwise take every core, on top of the other joblib workers' fits.
    """
    return limit_thread_pools(n_threads)


def _scaling_report(X):
    """A description of badly scaled columns of X, or None when X looks fine."""
    n = X.shape[0]
    if n < 2:
        return None
    Xs = X[:: -(-n // _SCALE_CHECK_ROWS)]
    mean = Xs.mean(axis=0, dtype=np.float64)
    std = Xs.std(axis=0, dtype=np.float64)
    # Constant columns carry no signal and do no harm to the step size: skip them.
    live = np.flatnonzero(std > 1e-12 * np.maximum(1.0, np.abs(mean)))
    if live.size == 0:
        return None
    seen = []
    s = std[live]
    if live.size >= 2 and s.max() > SCALE_RATIO_LIMIT * s.min():
        hi, lo = live[s.argmax()], live[s.argmin()]
        seen.append(f"column standard deviations range from {std[lo]:.3g} (column {lo}) to "
                    f"{std[hi]:.3g} (column {hi}), a ratio of {std[hi] / std[lo]:.3g} > "
                    f"{SCALE_RATIO_LIMIT:g}")
    off = np.abs(mean[live]) / s
    if off.max() > OFFSET_RATIO_LIMIT:
        j = live[off.argmax()]
        seen.append(f"column {j} has mean {mean[j]:.4g}, {off.max():.3g} standard deviations "
                    f"away from 0 (> {OFFSET_RATIO_LIMIT:g})")
    return "; ".join(seen) if seen else None


def _forward(coefs, intercepts, X, activation):
    """Output-layer pre-activations of the network for X (a new array in X's dtype)."""
    A = X
    last = len(coefs) - 1
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        out = np.empty((A.shape[0], W.shape[1]), dtype=X.dtype)
        ref.dense_forward(A, np.asarray(W, X.dtype), np.asarray(b, X.dtype),
                          activation if l < last else "identity", out)
        A = out
    return A


def _dense(X, dtype=None):
    """C-contiguous dense copy-or-view of a validated X (sparse input is densified)."""
    if scipy.sparse.issparse(X):
        X = X.toarray()
    return np.ascontiguousarray(X, dtype=dtype)


def _sklearn_packing(net):
    """Indices into ``net.params`` in scikit-learn's packed order (all W, then all b)."""
    base = net.params.__array_interface__["data"][0]
    item = net.params.itemsize
    parts = []
    for arrs in (net.coefs_, net.intercepts_):
        for a in arrs:
            start = (a.__array_interface__["data"][0] - base) // item
            parts.append(np.arange(start, start + a.size, dtype=np.int64))
    return np.concatenate(parts)


_DOC_PARAMS = """dropout : float in [0, 1) or sequence of float, default=0.0
        Drop probability of the hidden units (inverted dropout, one value for every hidden
        layer or one per hidden layer). Nothing is dropped at predict time. Not available
        with ``solver="lbfgs"``.
    l1 : float >= 0, default=0.0
        L1 strength with ``alpha``'s per-batch meaning: the penalty of a batch of sample
        weight S is ``(alpha/2 ||W||^2 + l1/2 |W|_1) / S``.
    l1_method : {"subgradient", "proximal"}, default="subgradient"
        ``"proximal"`` soft-thresholds the weights after each step and gives exact zeros
        (sgd / adam only; lbfgs uses the subgradient).
    n_threads : int >= 1 or None, default=None
        Threads of one training step. ``None`` picks: 1 inside a joblib worker (for example
        ``GridSearchCV(n_jobs=2)`` or ``cross_val_score(n_jobs=2)``, whose workers already
        occupy the other cores), else ``OMP_NUM_THREADS`` if set (joblib's process workers
        and Dask's workers set it), else all cores. While training, BLAS and OpenMP pools
        are held to this number.
    parallel : {"sync", "hogwild"}, default="sync"
        With ``n_threads > 1``: deterministic data-parallel steps, or lock-free Hogwild.
    backend : {"auto", "cython", "numba", "numpy"}, default="auto"
        The kernels of the stochastic solvers; lbfgs evaluates its loss and gradient with
        the NumPy reference kernels."""

_DOC_NOTES = """Training runs on nnopt_fast's kernels; with the same starting weights,
    ``shuffle=False`` and float64 data it follows scikit-learn's updates to rounding error,
    and an equal ``random_state`` gives scikit-learn's initial weights, validation split and
    batch order. scipy.sparse CSR/CSC input is accepted and densified once per call to
    ``fit`` / ``partial_fit`` / ``predict`` (the kernels are dense). ``fit`` emits a
    :class:`ScalingWarning` when X's columns differ wildly in scale. A non-finite training
    loss raises :class:`FitDivergenceError` (a ``ValueError``) and keeps the weights of the
    start of the failing epoch. ``est.save(path)`` / ``nnopt_fast.load(path)`` store the
    model without pickle; pickle and joblib work too."""


class _BaseMLP(BaseEstimator):
    """Shared fitting machinery of the two estimators."""

    _parameter_constraints: dict = {
        **BaseMultilayerPerceptron._parameter_constraints,
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
        "l1": [Interval(Real, 0, None, closed="left")],
        "l1_method": [StrOptions({"subgradient", "proximal"})],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "parallel": [StrOptions({"sync", "hogwild"})],
        "backend": [StrOptions({"auto", "cython", "numba", "numpy"})],
    }

    # ---------------------------------------------------------------- parameters
    def _hidden_sizes(self):
        h = self.hidden_layer_sizes
        h = list(h) if hasattr(h, "__iter__") else [h]
        if not all(isinstance(u, Integral) and not isinstance(u, bool) for u in h):
            raise ValueError(f"hidden_layer_sizes must hold integers, got {h}.")
        if any(u <= 0 for u in h):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {h}.")
        return [int(u) for u in h]

    def _dropout(self, n_hidden):
        if np.ndim(self.dropout) == 0:
            return float(self.dropout)
        ps = [float(p) for p in np.asarray(self.dropout, dtype=np.float64).ravel()]
        if len(ps) != n_hidden:
            raise ValueError(f"dropout must be a float or one value per hidden layer "
                             f"({n_hidden}), got {len(ps)} values")
        if not all(0.0 <= p < 1.0 for p in ps):
            raise ValueError(f"dropout values must be in [0, 1), got {ps}")
        return tuple(ps)

    def _optimizer_kind(self):
        if self.solver == "adam":
            return "adam"
        if self.momentum == 0:
            # scikit-learn's SGD with momentum 0 (Nesterov or not) is the plain step.
            return "sgd"
        return "nesterov" if self.nesterovs_momentum else "momentum"

    # ---------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._validate_params()
        self._check_extra_params()
        hidden = self._hidden_sizes()
        dropout = self._dropout(len(hidden))
        if self.solver == "lbfgs":
            if np.any(np.asarray(dropout) > 0):
                raise ValueError("dropout needs a stochastic solver ('sgd' or 'adam'); "
                                 "solver='lbfgs' minimizes a deterministic objective")
            if self.l1 > 0 and self.l1_method == "proximal":
                raise ValueError("l1_method='proximal' needs solver='sgd' or 'adam'; "
                                 "with solver='lbfgs' use l1_method='subgradient'")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        X = _dense(X)
        n_samples, n_features = X.shape
        if sample_weight is not None:
            sample_weight = np.ascontiguousarray(_check_sample_weight(sample_weight, X),
                                                 dtype=X.dtype)
        layer_units = [n_features, *hidden, Y.shape[1]]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            net = self._initialize(Y, layer_units, X.dtype)
            warn_scaling = True
        else:
            net = self._net_from_attributes(layer_units, X.dtype)
            warn_scaling = not incremental
        if warn_scaling:
            report = _scaling_report(X)
            if report:
                warnings.warn(
                    f"{type(self).__name__}.fit: X's columns differ wildly in scale: {report}. "
                    f"Gradient descent trains an MLP poorly on unscaled inputs; standardize "
                    f"them, e.g. make_pipeline(StandardScaler(), {type(self).__name__}()).",
                    ScalingWarning, stacklevel=3)
        try:
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(net, X, Y, sample_weight, dropout, incremental)
            else:
                self._fit_lbfgs(net, X, Y, sample_weight)
        finally:
            # The fitted coefs_ / intercepts_ are views into the model's flat buffer.
            self.coefs_, self.intercepts_ = net.coefs_, net.intercepts_
        if not np.isfinite(net.params).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")
        return self

    def _check_extra_params(self):
        pass

    def _initialize(self, Y, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        # MLP draws its Glorot-uniform weights exactly as scikit-learn does, from the
        # same RandomState, so equal random_state gives equal starting weights.
        net = MLP(layer_units, self.activation, self.out_activation_, dtype, self._random_state)
        self._best_params = net.params.copy()
        self._optimizer = None
        self._dropout_seed = None
        self._dropout_step = 0
        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None
        return net

    def _net_from_attributes(self, layer_units, dtype):
        """Continue from the current (possibly user-assigned) coefs_ / intercepts_."""
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        shapes = [tuple(np.shape(W)) for W in coefs]
        want = list(zip(layer_units[:-1], layer_units[1:]))
        if shapes != want:
            raise ValueError(f"coefs_ have shapes {shapes}, but the data and "
                             f"hidden_layer_sizes need {want}; refit with warm_start=False")
        net = MLP.from_weights(coefs, intercepts, self.activation, self.out_activation_, dtype)
        if not hasattr(self, "_best_params") or self._best_params.shape != net.params.shape:
            self._best_params = net.params.copy()
        for name, value in (("_optimizer", None), ("_dropout_seed", None),
                            ("_dropout_step", 0)):
            if not hasattr(self, name):
                setattr(self, name, value)
        if self.solver in _STOCHASTIC_SOLVERS and not hasattr(self, "loss_curve_"):
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.best_loss_ = None if self.early_stopping else np.inf
            self.validation_scores_ = [] if self.early_stopping else None
            self.validation_loss_curve_ = [] if self.early_stopping else None
            self.best_validation_score_ = -np.inf if self.early_stopping else None
        return net

    def _targets(self, Y, dtype):
        """Kernel targets: int64 class indices (softmax), else a (n, k) float array."""
        if self.out_activation_ == "softmax":
            return np.ascontiguousarray(Y.argmax(axis=1), dtype=np.int64)
        return np.ascontiguousarray(Y, dtype=dtype)

    def _fit_stochastic(self, net, X, Y, sample_weight, dropout, incremental):
        kind = self._optimizer_kind()
        if not incremental or self._optimizer is None or self._optimizer.kind != kind:
            self._optimizer = _OptimizerState(kind, self.learning_rate_init)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        if self.early_stopping:
            # Stratify like scikit-learn: single-output classification only.
            stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
            split = train_test_split(*arrays, random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, Y_train, Y_val = split[:4]
            sw_train, sw_val = (None, None) if sample_weight is None else split[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            val = (X_val, self._val_truth(Y_val), self._targets(Y_val, X.dtype), sw_val)
        else:
            X_train, Y_train, sw_train = X, Y, sample_weight
            val = None
        train = (np.ascontiguousarray(X_train), self._targets(Y_train, X.dtype), sw_train)
        n_samples = X_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. "
                              "It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        if np.any(np.asarray(dropout) > 0) and self._dropout_seed is None:
            self._dropout_seed = int(self._random_state.randint(0, 2**31 - 1))
        cfg = make_config(
            net, batch_size=batch_size, n_samples=n_samples, optimizer=kind,
            momentum=self.momentum, beta1=self.beta_1, beta2=self.beta_2,
            epsilon=self.epsilon, l2=self.alpha, l1=self.l1, l1_method=self.l1_method,
            penalty_div=0, dropout=dropout, seed=self._dropout_seed or 0,
            n_threads=self.n_threads if self.n_threads is not None else _n_threads_default(),
            parallel=self.parallel)
        backend = get_backend(self.backend)
        self.backend_ = getattr(backend, "BACKEND_NAME", self.backend)
        state = TrainState(net, cfg)
        self._optimizer.load_into(state)
        state.step = self._dropout_step
        # The one owner of the threads: BLAS or OpenMP/Numba, never both (docs/threads.md).
        with thread_budget(cfg, backend, train[0].shape[0]) as run_cfg:
            try:
                self._epochs(backend, run_cfg, state, net, train, val, incremental)
            except KeyboardInterrupt:
                warnings.warn("Training interrupted by user.")
            finally:
                self._optimizer.save_from(state)
                self._dropout_step = state.step
        if self.early_stopping:
            net.params[...] = self._best_params

    def _epochs(self, backend, cfg, state, net, train, val, incremental):
        """scikit-learn's epoch loop around ``backend.run_epoch``.

        Shuffling, the loss bookkeeping, the stopping rules and the learning-rate schedules
        are scikit-learn's; ``self._optimizer.learning_rate`` holds the current rate.
        """
        X_train, T_train, sw_train = train
        n_samples = X_train.shape[0]
        opt = self._optimizer
        # scikit-learn's squared loss is a mean over outputs; the kernel's is a sum.
        loss_div = self.n_outputs_ if self.out_activation_ == "identity" else 1
        sgd = opt.kind != "adam"
        sample_idx = np.arange(n_samples, dtype=np.int64)
        self.n_iter_ = 0
        for _ in range(self.max_iter):
            if self.shuffle:
                # The same draw as scikit-learn's, from the same RandomState.
                sample_idx = _sk_shuffle(sample_idx, random_state=self._random_state)
            snap = state.snapshot()
            try:
                data, pen, n_steps, status = backend.run_epoch(
                    cfg, state, X_train, T_train, sw_train, sample_idx, opt.learning_rate,
                    state.step)
            except KeyboardInterrupt:
                state.restore(snap)
                raise
            except ZeroDivisionError as err:
                state.restore(snap)
                raise zero_weight_error(err, self.n_iter_ + 1) from err
            loss = (data / loss_div + pen) / n_samples
            if status != 0 or not np.isfinite(loss) or not np.isfinite(state.params).all():
                state.restore(snap)
                raise FitDivergenceError(self.n_iter_ + 1, opt.learning_rate, "learning_rate_init")
            state.step += n_steps
            state.t += n_steps
            self.n_iter_ += 1
            self.loss_ = loss
            self.t_ += n_samples
            self.loss_curve_.append(loss)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            self._update_no_improvement_count(net, val)
            if sgd and self.learning_rate == "invscaling":
                opt.learning_rate = (float(self.learning_rate_init)
                                     / (self.t_ + 1) ** self.power_t)
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if val is not None else "Training loss"
                msg = (f"{what} did not improve more than tol={self.tol:f} for "
                       f"{self.n_iter_no_change} consecutive epochs.")
                if not (sgd and self.learning_rate == "adaptive"):
                    if self.verbose:
                        print(msg + " Stopping.")
                    break
                if opt.learning_rate <= 1e-6:
                    if self.verbose:
                        print(msg + " Learning rate too small. Stopping.")
                    break
                opt.learning_rate /= 5.0
                if self.verbose:
                    print(msg + " Setting learning rate to %f" % opt.learning_rate)
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                              "optimization hasn't converged yet." % self.max_iter,
                              ConvergenceWarning)

    def _update_no_improvement_count(self, net, val):
        if val is None:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]
            return
        X_val, y_val, T_val, sw_val = val
        Z = _forward(net.coefs_, net.intercepts_, X_val, self.activation)
        self.validation_loss_curve_.append(self._data_loss(Z, T_val, sw_val))
        score = self._val_score(Z, y_val, sw_val)
        self.validation_scores_.append(score)
        if self.verbose:
            print("Validation score: %f" % score)
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_params = net.params.copy()

    def _data_loss(self, Z, T, sw):
        """scikit-learn's data loss (no penalty) of pre-activations Z against kernel targets T."""
        total = ref.output_loss(self.out_activation_, Z, T, sw, np.empty_like(Z))
        S = float(Z.shape[0]) if sw is None else float(sw.sum(dtype=np.float64))
        div = self.n_outputs_ if self.out_activation_ == "identity" else 1
        return total / S / div

    def _fit_lbfgs(self, net, X, Y, sample_weight):
        """Full-batch L-BFGS-B over the flat parameters, as scikit-learn's ``_fit_lbfgs``."""
        self.backend_ = "numpy"
        T = self._targets(Y, X.dtype)
        n = X.shape[0]
        S = float(n) if sample_weight is None else float(sample_weight.sum(dtype=np.float64))
        L = len(net.coefs_)
        act, out = self.activation, self.out_activation_
        dt = X.dtype.type
        loss_div = self.n_outputs_ if out == "identity" else 1
        idx = _sklearn_packing(net)
        params, coefs, intercepts = net.params, net.coefs_, net.intercepts_
        grads = np.zeros_like(params)
        gW, gb = net._views(grads)
        H = [X] + [np.empty((n, W.shape[1]), dtype=X.dtype) for W in coefs]
        dA = [None] + [np.empty((n, W.shape[1]), dtype=X.dtype) for W in coefs[:-1]]
        dZ = np.empty_like(H[-1])
        alpha, l1 = float(self.alpha), float(self.l1)

        def loss_grad(x):
            params[idx] = x
            for l in range(L):
                ref.dense_forward(H[l], coefs[l], intercepts[l],
                                  act if l < L - 1 else "identity", H[l + 1])
            data = ref.output_loss(out, H[L], T, sample_weight, dZ) / S / loss_div
            loss = data + ref.penalty(coefs, alpha, l1, S)
            delta = dZ
            for l in range(L, 0, -1):
                ref.dense_backward(delta, H[l - 1], coefs[l - 1], 1.0 / S, gW[l - 1],
                                   gb[l - 1], dA[l - 1] if l > 1 else None)
                if l > 1:
                    ref.activation_backward(H[l - 1], dA[l - 1], act, dA[l - 1])
                    delta = dA[l - 1]
            for W, g in zip(coefs, gW):
                if alpha:
                    ref.inplace_l2_grad(g, W, alpha / S)
                if l1:
                    ref.inplace_l1_subgradient(g, W, l1 / (2.0 * S))
            return loss, grads[idx].astype(np.float64)

        options = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        options.update(_lbfgs_iprint(1 if self.verbose else -1))
        n_threads = self.n_threads if self.n_threads is not None else _n_threads_default()
        with _thread_budget(n_threads):
            res = scipy.optimize.minimize(loss_grad, params[idx].astype(np.float64),
                                          method="L-BFGS-B", jac=True, options=options)
        if res.status != 0:
            msg = res.message.decode() if isinstance(res.message, bytes) else res.message
            warnings.warn(f"lbfgs failed to converge after {res.nit} iteration(s) "
                          f"(status={res.status}): {msg}. Increase the number of iterations "
                          f"(max_iter) or scale the data.", ConvergenceWarning, stacklevel=4)
        self.n_iter_ = min(int(res.nit), self.max_iter)
        self.loss_ = float(res.fun)
        params[idx] = res.x.astype(dt)

    # ---------------------------------------------------------------- inference
    def _forward_pass_fast(self, X, check_input=True):
        """Output-layer activations (probabilities or values) for X."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                              dtype=(np.float64, np.float32))
        dtype = np.asarray(self.coefs_[0]).dtype
        if dtype not in (np.float32, np.float64):
            dtype = np.float64
        X = _dense(X, dtype)
        Z = _forward(self.coefs_, self.intercepts_, X, self.activation)
        return ref.output_activation(self.out_activation_, Z)

    def _score_with_function(self, X, y, sample_weight, score_function):
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return score_function(y, y_pred, sample_weight=sample_weight)

    # ---------------------------------------------------------------- persistence
    def save(self, path):
        """Save the fitted estimator to ``path``: arrays in .npz plus JSON metadata.

        The file holds no pickled object; :func:`nnopt_fast.load` reads it back without
        executing code. It keeps the parameters, the fitted attributes, the labels and the
        optimizer state (so ``partial_fit`` and ``warm_start`` continue as they would
        have); a ``random_state`` that is a ``RandomState`` object is stored as None.

        Parameters
        ----------
        path : str or os.PathLike
            Written as given (no suffix is added), through a temporary file in the same
            directory so that a crash never leaves a half-written model.

        Raises
        ------
        TypeError
            When ``classes_`` holds labels other than numbers or strings.
        """
        from ._serialization import save

        save(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _lbfgs_iprint(iprint):
    try:
        from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
    except ImportError:  # older scikit-learn: scipy still takes iprint
        return {"iprint": iprint}
    return _get_additional_lbfgs_options_dict("iprint", iprint)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's, trained by nnopt_fast.

    Binary targets get one logistic output, multiclass targets a softmax, multilabel
    indicator targets one logistic output per label; labels may be any hashable values.

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose,
    warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
    beta_1, beta_2, epsilon, n_iter_no_change, max_fun
        As in :class:`sklearn.neural_network.MLPClassifier` (same meanings and defaults).
    {params}

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

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, dropout=0.0, l1=0.0,
                 l1_method="subgradient", n_threads=None, parallel="sync", backend="auto"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.l1 = l1
        self.l1_method = l1_method
        self.n_threads = n_threads
        self.parallel = parallel
        self.backend = backend

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            float32 is kept; any other dtype is converted to float64.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a 0/1 indicator matrix for multilabel classification.
        sample_weight : array-like of shape (n_samples,), default=None

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
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            self._check_n_classes()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _check_n_classes(self):
        if len(self.classes_) < 2:
            raise ValueError(f"MLPClassifier needs samples of at least 2 classes in the "
                             f"data, but the data contains only one class: "
                             f"{self.classes_[0]!r}")

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        y_type = type_of_target(y, input_name="y")
        if y_type not in ("binary", "multiclass", "multilabel-indicator"):
            check_classification_targets(y)  # scikit-learn's own message for bad targets
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            Y = self._fit_labels(y, y_type)
            self.classes_ = self._label_binarizer.classes_
            self._check_n_classes()
            return X, Y
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        f"warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` "
                                 f"has {self.classes_}. 'y' has {classes}.")
        return X, self._binarize(y)

    def _fit_labels(self, y, y_type):
        """Fit the label encoding; return the binarized y (bool, shape (n, n_outputs)).

        Labels of one type take a single ``np.unique`` pass, which gives scikit-learn's
        ``LabelBinarizer`` state (sorted ``classes_``, ``y_type_``) and the class of each
        sample at once; other targets go through ``LabelBinarizer.fit`` itself.
        """
        lb = LabelBinarizer()
        self._label_binarizer = lb
        if y_type in ("binary", "multiclass") and np.ndim(y) == 1:
            try:
                classes, idx = np.unique(np.asarray(y), return_inverse=True)
            except TypeError:  # mixed label types: let scikit-learn say so
                classes = None
            if classes is not None:
                if classes.dtype == object:
                    # scikit-learn's unique_labels turns object labels into a typed array.
                    classes = np.asarray(classes.tolist())
                lb.classes_, lb.y_type_, lb.sparse_input_ = classes, y_type, False
                if len(classes) < 2:
                    return np.zeros((len(idx), 1), dtype=bool)
                if y_type == "binary":
                    return (idx == 1).reshape(-1, 1)
                Y = np.zeros((len(idx), len(classes)), dtype=bool)
                Y[np.arange(len(idx)), idx] = True
                return Y
        lb.fit(y)
        return self._binarize(y)

    def _binarize(self, y):
        """scikit-learn's LabelBinarizer output as bool, without its sparse detour."""
        lb = self._label_binarizer
        classes = lb.classes_
        if lb.y_type_ in ("binary", "multiclass") and np.ndim(y) == 1 and len(classes) >= 2:
            y = np.asarray(y)
            idx = np.searchsorted(classes, y)
            if np.array_equal(classes[np.minimum(idx, len(classes) - 1)], y):
                if lb.y_type_ == "binary":
                    return (idx == 1).reshape(-1, 1)
                Y = np.zeros((len(y), len(classes)), dtype=bool)
                Y[np.arange(len(y)), idx] = True
                return Y
        return lb.transform(y).astype(bool)

    def _val_truth(self, Y_val):
        return self._label_binarizer.inverse_transform(Y_val)

    def _val_score(self, Z, y_val, sw_val):
        P = ref.output_activation(self.out_activation_, Z)
        if not np.isfinite(P).all():
            return np.nan
        pred = self._label_binarizer.inverse_transform(P.ravel() if P.shape[1] == 1 else P)
        return accuracy_score(y_val, pred, sample_weight=sw_val)

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
        if self.n_outputs_ == 1:
            P = P.ravel()
        return self._label_binarizer.inverse_transform(P)

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
        """
        check_is_fitted(self)
        P = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
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


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's, trained by nnopt_fast.

    Parameters
    ----------
    loss : {{"squared_error"}}, default="squared_error"
        scikit-learn's ``"poisson"`` loss is not available (the kernels have no exp output).
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
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.l1 = l1
        self.l1_method = l1_method
        self.n_threads = n_threads
        self.parallel = parallel
        self.backend = backend

    def _check_extra_params(self):
        if self.loss != "squared_error":
            raise ValueError(f"loss={self.loss!r} is not supported by nnopt_fast's "
                             f"MLPRegressor (its kernels have no exp output); use "
                             f"loss='squared_error' or sklearn.neural_network.MLPRegressor")

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            float32 is kept; any other dtype is converted to float64.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

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

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _out_activation(self):
        return "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, np.asarray(y).reshape(len(y), -1)

    def _val_truth(self, Y_val):
        return Y_val

    def _val_score(self, Z, y_val, sw_val):
        if not np.isfinite(Z).all():
            return np.nan
        return r2_score(y_val, Z.ravel() if Z.shape[1] == 1 else Z, sample_weight=sw_val)

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


MLPClassifier.__doc__ = MLPClassifier.__doc__.format(params=_DOC_PARAMS, notes=_DOC_NOTES)
MLPRegressor.__doc__ = MLPRegressor.__doc__.format(params=_DOC_PARAMS, notes=_DOC_NOTES)

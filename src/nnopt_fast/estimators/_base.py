"""What MLPClassifier and MLPRegressor share: parameters, the fit transaction, inference."""

import copy
import inspect
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from .._serialization import ModelFileError, check_state, npz
from .._validation import all_finite
from ..model.mlp import MLP
from ..train.loop import DivergenceError
from ..train.state import OptimizerState
from ._errors import NONFINITE_MESSAGE, FitDivergenceError, divergence_advice, predicts_finite
from ._forward import as_rows, network
from ._inputs import check_predict_X
from ._lbfgs import fit_lbfgs
from ._params import NNOPT_CONSTRAINTS, SKLEARN_MLP_CONSTRAINTS, check_param_values, param_names
from ._reuse import forget, reused
from ._scaling import warn_scaling
from ._stochastic import STOCHASTIC_SOLVERS, fit_stochastic

#: scikit-learn's private names the estimators use, for want of a public API doing their
#: job (parameter validation as scikit-learn's own estimators and its estimator checks
#: expect it); pyproject.toml bounds scikit-learn above to the releases tested with them.
SKLEARN_PRIVATE_API = (
    "sklearn.utils._param_validation.HasMethods",
    "sklearn.utils._param_validation.Interval",
    "sklearn.utils._param_validation.Options",
    "sklearn.utils._param_validation.StrOptions",
    "sklearn.utils._param_validation.make_constraint",
    "sklearn.base.BaseEstimator._validate_params",
)

def _fitted_state(est):
    """What a fit call may change besides the parameters, to put back if it fails.

    A fit rebinds the attributes it sets, with three exceptions. The lists it appends to
    (``loss_curve_`` and the validation curves) are kept with their lengths, to be cut
    back to them (not copied: a ``partial_fit`` stream makes them long). The optimizer
    state it updates is copied. The weights of a network that a call trains in place
    (the estimator's ``coefs_`` and ``intercepts_`` are views into its buffer) are kept
    as a copy of that buffer.

    Returns
    -------
    attributes : dict
    lengths : dict
        The length of each list attribute.
    weights : tuple (ndarray, ndarray) or None
        The buffer trained in place and a copy of its values.
    """
    _, names = param_names(type(est))
    attributes = {name: copy.copy(value) if type(value) is OptimizerState else value
                  for name, value in vars(est).items()
                  if name not in names and name != "_random_state"}
    lengths = {name: len(value) for name, value in attributes.items() if type(value) is list}
    net = reused(est).viewed_net(attributes.get("coefs_", ()), attributes.get("intercepts_", ()))
    return attributes, lengths, None if net is None else (net.params, net.params.copy())


def _restore(est, saved):
    """Put back a :func:`_fitted_state` (an unfitted one leaves the estimator unfitted)."""
    attributes, lengths, weights = saved
    _, names = param_names(type(est))
    for name in [k for k in vars(est) if k not in names and k != "_random_state"]:
        delattr(est, name)
    for name, length in lengths.items():
        del attributes[name][length:]
    est.__dict__.update(attributes)
    if weights is not None:
        weights[0][...] = weights[1]


class _BaseMLP(BaseEstimator):
    """Shared fitting machinery of the two estimators."""

    _parameter_constraints: dict = {**SKLEARN_MLP_CONSTRAINTS, **NNOPT_CONSTRAINTS}

    # ---------------------------------------------------------------- parameters
    def _store_params(self, arguments):
        """Keep each ``__init__`` argument as the attribute of its name (scikit-learn's rule:
        ``__init__`` stores its parameters unchanged and does nothing else)."""
        for name, value in arguments.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

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

    def _check_params(self, dropout):
        check_param_values(self, reused(self))
        self._check_extra_params()
        if self.solver == "lbfgs":
            if np.any(np.asarray(dropout) > 0):
                raise ValueError("dropout needs a stochastic solver ('sgd' or 'adam'); "
                                 "solver='lbfgs' minimizes a deterministic objective")
            if self.l1 > 0 and self.l1_method == "proximal":
                raise ValueError("l1_method='proximal' needs solver='sgd' or 'adam'; "
                                 "with solver='lbfgs' use l1_method='subgradient'")

    def _check_extra_params(self):
        pass

    def _check_solver(self):
        if self.solver not in STOCHASTIC_SOLVERS:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    # ---------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        """Fit, or leave the estimator usable: on any error it keeps its previous state,
        or (after a divergence) weights that predict finite values on the training data."""
        previous = _fitted_state(self)
        try:
            self._train(X, y, sample_weight, incremental, classes)
        except FitDivergenceError as err:
            forget(self)
            if err.keeps_weights:
                held = f"The estimator keeps its weights from the start of epoch {err.epoch}."
            else:
                _restore(self, previous)
                held = ("The estimator keeps the state it had before this call."
                        if "coefs_" in previous[0] else "The estimator is left unfitted.")
            err.args = (f"{err.args[0]} {held}",)
            raise
        except BaseException:
            forget(self)
            _restore(self, previous)
            raise
        return self

    def _train(self, X, y, sample_weight, incremental, classes):
        hidden = self._hidden_sizes()
        dropout = self._dropout(len(hidden))
        self._check_params(dropout)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, codes = self._validate_input(X, y, incremental, first_pass, classes)
        X = as_rows(X)
        sw = self._sample_weight(sample_weight, codes, X, incremental)
        layer_units = [X.shape[1], *hidden, self._n_outputs(codes)]
        self._random_state = reused(self).random_state(self.random_state)
        if first_pass:
            net = self._initialize(layer_units, X.dtype)
        else:
            net = self._net_from_attributes(layer_units, X.dtype)
        if first_pass or not incremental:
            warn_scaling(type(self).__name__, X, stacklevel=4)
        diverged = None
        try:
            if self.solver in STOCHASTIC_SOLVERS:
                diverged = fit_stochastic(self, net, X, codes, sw, dropout, incremental)
            else:
                fit_lbfgs(self, net, X, self._kernel_targets(codes, X.dtype), sw)
        except DivergenceError as err:
            # Weights of the start of epoch 1 were never trained: then keep nothing.
            raise self._divergence(net, X, codes, err.epoch, err.lr,
                                   keep=err.epoch > 1) from None
        finally:
            # The fitted coefs_ / intercepts_ are views into the model's flat buffer,
            # which the next call trains in place while they stay these arrays.
            self.coefs_, self.intercepts_ = reused(self).keep_net(net)
        # The last step of a fit is taken after its loss is known: it may still have
        # produced weights that overflow.
        usable = predicts_finite(self, net, X)
        if diverged is not None:
            if not usable:
                raise self._divergence(net, X, codes, diverged.epoch, diverged.lr)
            advice = divergence_advice(self, X, codes, diverged.epoch, diverged.lr)
            warnings.warn(f"Training stopped at epoch {diverged.epoch}, whose loss was not "
                          f"finite; the estimator keeps the weights of its best validation "
                          f"score ({self.best_validation_score_:.6g}). {advice}",
                          ConvergenceWarning, stacklevel=4)
        elif not usable:
            stochastic = self.solver in STOCHASTIC_SOLVERS
            raise self._divergence(net, X, codes, self.n_iter_ if stochastic else None,
                                   self._optimizer.learning_rate if stochastic else None)

    def _divergence(self, net, X, codes, epoch, lr, keep=False):
        """The FitDivergenceError of a fit; it keeps the weights only if ``keep`` and
        they predict finite values."""
        err = FitDivergenceError(
            f"{NONFINITE_MESSAGE} {divergence_advice(self, X, codes, epoch, lr)}", epoch, lr)
        err.keeps_weights = keep and predicts_finite(self, net, X)
        return err

    def _sample_weight(self, sample_weight, codes, X, incremental):
        from .._validation import check_sample_weight

        return check_sample_weight(sample_weight, X.shape[0], X.dtype)

    def _initialize(self, layer_units, dtype):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = layer_units[-1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        # MLP draws its Glorot-uniform weights exactly as scikit-learn does, from the
        # same RandomState, so equal random_state gives equal starting weights.
        net = MLP(layer_units, self.activation, self.out_activation_, dtype, self._random_state)
        self._best_params = net.params.copy()
        self._optimizer = None
        self._dropout_seed = None
        self._dropout_step = 0
        if self.solver in STOCHASTIC_SOLVERS:
            self._reset_curves()
        return net

    def _reset_curves(self):
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self.best_loss_ = None if self.early_stopping else np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.validation_loss_curve_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None

    def _net_from_attributes(self, layer_units, dtype):
        """Continue from the current coefs_ / intercepts_: the network of the last call
        while they are its views (its weights, also changed in place, are checked
        finite), else a new one holding copies of them (arrays the user assigned)."""
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        shapes = [tuple(np.shape(W)) for W in coefs]
        want = list(zip(layer_units[:-1], layer_units[1:]))
        if shapes != want:
            raise ValueError(f"coefs_ have shapes {shapes}, but the data and "
                             f"hidden_layer_sizes need {want}; refit with warm_start=False")
        net = reused(self).net_for(coefs, intercepts, self.activation, self.out_activation_,
                                   dtype)
        if net is None or not all_finite(net.params):
            net = MLP.from_weights(coefs, intercepts, self.activation, self.out_activation_,
                                   dtype)
        if not hasattr(self, "_best_params") or self._best_params.shape != net.params.shape:
            self._best_params = net.params.copy()
        for name, value in (("_optimizer", None), ("_dropout_seed", None),
                            ("_dropout_step", 0)):
            if not hasattr(self, name):
                setattr(self, name, value)
        if self.solver in STOCHASTIC_SOLVERS and not hasattr(self, "loss_curve_"):
            self._reset_curves()
        return net

    # ---------------------------------------------------------------- inference
    def _forward_pass_fast(self, X, check_input=True):
        """Output-layer activations (probabilities or values) for X, by the compiled
        forward pass (a large X on up to ``n_threads`` threads)."""
        net = network(self.coefs_, self.intercepts_, self.activation, self.out_activation_,
                      owner=self)
        if check_input:
            X = check_predict_X(self, X)
        return net(as_rows(X, net.dtype), apply_output=True, n_threads=self.n_threads)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "coefs_")

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
        have), and the nnopt_fast, numpy and scikit-learn versions that wrote it; a
        ``random_state`` that is a ``RandomState`` object is stored as None. A Pipeline
        holding the estimator is saved with :func:`nnopt_fast.save`.

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
        check_is_fitted(self)
        npz.write(self, path)

    def __setstate__(self, state):
        """Set a pickled or loaded state after checking every attribute of it.

        Raises
        ------
        ModelFileError
            For an attribute that is not one of the estimator's, or whose type, shape or
            value is wrong (non-finite weights, an output layer that does not match the
            estimator's kind or targets, ...).
        """
        state = dict(state)
        signature = inspect.signature(type(self).__init__).parameters
        names = [n for n, p in signature.items() if n != "self" and p.kind != p.VAR_KEYWORD]
        for name in names:
            # A state written before a parameter existed gets its default.
            state.setdefault(name, signature[name].default)
        kind = "MLPClassifier" if is_classifier(self) else "MLPRegressor"
        check_state(kind, state, names,
                    strict=type(self).__module__.startswith("nnopt_fast."))
        super().__setstate__(state)
        if "coefs_" in state:
            try:
                self._validate_params()
            except ValueError as exc:  # scikit-learn's InvalidParameterError
                raise ModelFileError(f"invalid parameter: {exc}") from None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

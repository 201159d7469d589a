"""The allow-list of an estimator's state: every attribute a loaded estimator may hold,
checked for type, shape and value before it is set."""

from numbers import Integral, Real

import numpy as np

from ..kernels import reference as ref
from ..train.state import OptimizerState
from ._errors import ModelFileError

#: Target types of a classifier and the output layer each trains.
_OUT_ACTIVATION = {"binary": "logistic", "multiclass": "softmax",
                   "multilabel-indicator": "logistic"}
#: Fitted attributes every fitted estimator has (with ``classes_`` and ``_y_type`` for a
#: classifier).
CORE = ("coefs_", "intercepts_", "n_features_in_", "n_layers_", "n_outputs_",
        "out_activation_", "n_iter_")
#: Fitted attributes that are plain numbers, strings, lists of numbers or None.
SCALARS = ("loss_", "best_loss_", "loss_curve_", "validation_scores_",
           "validation_loss_curve_", "best_validation_score_", "t_", "n_iter_", "n_layers_",
           "n_outputs_", "out_activation_", "n_features_in_", "backend_")
#: Private training state, so that a loaded estimator continues (warm_start, partial_fit)
#: exactly like the one that was saved.
TRAINING = ("_no_improvement_count", "_dropout_seed", "_dropout_step")
_OTHER = ("coefs_", "intercepts_", "feature_names_in_", "classes_", "_y_type",
          "_best_params", "_optimizer", "_random_state", "_metadata_request")
_OPTIMIZER_FIELDS = {"kind", "learning_rate", "velocity", "m", "v", "t"}


def _fail(what):
    raise ModelFileError(what)


def _int(value, name, low=0):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        _fail(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _float_or_none(value, name):
    if value is not None and (isinstance(value, bool) or not isinstance(value, Real)):
        _fail(f"{name} must be a number or None, got {type(value).__name__}")


def _float_list(value, name):
    if value is None:
        return
    if not isinstance(value, list):
        _fail(f"{name} must be a list of numbers or None, got {type(value).__name__}")
    for v in value:
        _float_or_none(v, f"each entry of {name}")


def _array(value, name, dtype, shape):
    if not isinstance(value, np.ndarray) or value.dtype != dtype or value.shape != shape:
        got = (f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray)
               else type(value).__name__)
        _fail(f"{name} must be a {dtype} array of shape {shape}, got {got}")
    if not np.isfinite(value).all():
        _fail(f"{name} holds NaN or infinite values")


def _layers(state):
    """The checked weights: dtype and the number of parameters."""
    coefs, intercepts = state["coefs_"], state["intercepts_"]
    if not isinstance(coefs, (list, tuple)) or not isinstance(intercepts, (list, tuple)) \
            or not coefs or len(coefs) != len(intercepts):
        _fail("coefs_ and intercepts_ must be lists of arrays of the same length")
    W0 = coefs[0]
    if not isinstance(W0, np.ndarray) or W0.dtype not in (np.float32, np.float64) \
            or W0.ndim != 2:
        _fail("coefs_[0] must be a 2-D float32 or float64 array")
    n_in = W0.shape[0]
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        if not isinstance(W, np.ndarray) or W.ndim != 2 or W.shape[0] != n_in \
                or W.shape[1] < 1:
            _fail(f"coefs_[{i}] must be a 2-D array of {n_in} rows")
        _array(W, f"coefs_[{i}]", W0.dtype, W.shape)
        _array(b, f"intercepts_[{i}]", W0.dtype, (W.shape[1],))
        n_in = W.shape[1]
    n_params = sum(W.size + b.size for W, b in zip(coefs, intercepts))
    if state["n_layers_"] != len(coefs) + 1:
        _fail(f"n_layers_ is {state['n_layers_']!r} for {len(coefs)} weight layers")
    if state["n_features_in_"] != W0.shape[0]:
        _fail(f"n_features_in_ is {state['n_features_in_']!r}; coefs_[0] has "
              f"{W0.shape[0]} rows")
    if state["n_outputs_"] != coefs[-1].shape[1]:
        _fail(f"n_outputs_ is {state['n_outputs_']!r}; the last layer has "
              f"{coefs[-1].shape[1]} units")
    return W0.dtype, n_params


def _check_labels(state):
    """A classifier's classes_ and target type, and the output layer they imply."""
    y_type, classes = state["_y_type"], state["classes_"]
    if y_type not in _OUT_ACTIVATION:
        _fail(f"_y_type must be one of {sorted(_OUT_ACTIVATION)}, got {y_type!r}")
    if not isinstance(classes, np.ndarray) or classes.ndim != 1 or classes.size == 0:
        _fail("classes_ must be a non-empty 1-D array")
    if classes.dtype.kind not in "biufUO" or (
            classes.dtype.kind == "O" and not all(isinstance(c, str) for c in classes)):
        _fail(f"classes_ must hold numbers or strings, got dtype {classes.dtype}")
    if not np.array_equal(np.unique(classes), classes):
        _fail("classes_ must be sorted and unique")
    n_out = len(classes) if y_type != "binary" else 1
    if y_type == "binary" and len(classes) > 2 or y_type == "multiclass" and len(classes) < 3:
        _fail(f"{len(classes)} classes_ do not make a {y_type} target")
    if state["n_outputs_"] != n_out:
        _fail(f"n_outputs_ is {state['n_outputs_']!r}; {y_type} targets of "
              f"{len(classes)} classes need {n_out}")
    return _OUT_ACTIVATION[y_type]


def _check_optimizer(opt, dtype, n_params):
    if opt is None:
        return
    if type(opt) is not OptimizerState or set(vars(opt)) != _OPTIMIZER_FIELDS:
        _fail("_optimizer must be an nnopt_fast OptimizerState")
    if opt.kind not in ref.OPTIMIZERS:
        _fail(f"_optimizer.kind must be one of {list(ref.OPTIMIZERS)}, got {opt.kind!r}")
    lr = opt.learning_rate
    if isinstance(lr, bool) or not isinstance(lr, Real) or not np.isfinite(lr) or lr <= 0:
        _fail(f"_optimizer.learning_rate must be a finite number > 0, got {lr!r}")
    _int(opt.t, "_optimizer.t")
    for name in ("velocity", "m", "v"):
        buf = getattr(opt, name)
        if buf is not None:
            size = buf.size if isinstance(buf, np.ndarray) and buf.size == 0 else n_params
            _array(buf, f"_optimizer.{name}", dtype, (size,))


def _check_fitted(kind, state):
    missing = [a for a in CORE + (("classes_", "_y_type") if kind == "MLPClassifier" else ())
               if a not in state]
    if missing:
        _fail(f"a fitted {kind} needs {missing}")
    for name in ("n_features_in_", "n_layers_", "n_outputs_", "n_iter_"):
        _int(state[name], name, low=0)
    dtype, n_params = _layers(state)
    out = _check_labels(state) if kind == "MLPClassifier" else "identity"
    if state["out_activation_"] != out:
        _fail(f"out_activation_ is {state['out_activation_']!r}, but a {kind} of these "
              f"targets has a {out!r} output")
    for name in ("loss_", "best_loss_", "best_validation_score_"):
        _float_or_none(state.get(name), name)
    for name in ("loss_curve_", "validation_scores_", "validation_loss_curve_"):
        _float_list(state.get(name), name)
    for name in ("t_", "_no_improvement_count", "_dropout_step"):
        if name in state:
            _int(state[name], name)
    if state.get("_dropout_seed") is not None:
        _int(state["_dropout_seed"], "_dropout_seed")
    if "backend_" in state and state["backend_"] not in ("cython", "numba", "numpy", "auto"):
        _fail(f"backend_ must name a backend, got {state['backend_']!r}")
    if "_best_params" in state:
        _array(state["_best_params"], "_best_params", dtype, (n_params,))
    _check_optimizer(state.get("_optimizer"), dtype, n_params)
    names = state.get("feature_names_in_")
    if names is not None and not (
            isinstance(names, np.ndarray) and names.shape == (state["n_features_in_"],)
            and all(isinstance(n, str) for n in names)):
        _fail("feature_names_in_ must be an array of n_features_in_ strings")


def check_state(kind, state, param_names, strict=True):
    """Raise ModelFileError unless ``state`` is a valid state of a ``kind`` estimator.

    Parameters
    ----------
    kind : {"MLPClassifier", "MLPRegressor"}
    state : dict
        Attribute name -> value, as ``__setstate__`` receives it.
    param_names : set of str
        The estimator's constructor parameters (validated by the caller).
    strict : bool
        Reject names that are neither parameters nor known attributes (a subclass may
        add its own).
    """
    if kind == "MLPRegressor" and ("classes_" in state or "_y_type" in state):
        _fail("a regressor has no classes_: the file holds a classifier")
    allowed = set(param_names) | set(SCALARS) | set(TRAINING) | set(_OTHER)
    unknown = sorted(set(state) - allowed)
    if strict and unknown:
        _fail(f"unknown attribute(s) {unknown} for a {kind}")
    rs = state.get("_random_state")
    if rs is not None and not isinstance(rs, np.random.RandomState):
        _fail("_random_state must be a numpy RandomState")
    req = state.get("_metadata_request")
    if req is not None and not (type(req).__name__ == "MetadataRequest"
                                and type(req).__module__.startswith("sklearn.")):
        _fail("_metadata_request must be scikit-learn's MetadataRequest")
    fitted = [a for a in CORE if a in state]
    if fitted:
        _check_fitted(kind, state)

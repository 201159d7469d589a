"""The estimators' parameters: scikit-learn's constraints, checked once per call at little cost."""

import inspect
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, Options, StrOptions, make_constraint

#: scikit-learn's MLP parameters and their constraints (``_parameter_constraints``).
SKLEARN_MLP_CONSTRAINTS = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
    "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
    "max_fun": [Interval(Integral, 1, None, closed="left")],
}

#: nnopt_fast's own parameters of both estimators and their constraints.
NNOPT_CONSTRAINTS = {
    "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
    "l1": [Interval(Real, 0, None, closed="left")],
    "l1_method": [StrOptions({"subgradient", "proximal"})],
    "n_threads": [Interval(Integral, 1, None, closed="left"), Options(Integral, {-1}), None],
    "parallel": [StrOptions({"sync", "hogwild"})],
    "backend": [StrOptions({"auto", "cython", "numba", "numpy"})],
}

#: Types of parameter values that cannot change in place: equal values of these types
#: (alone or in a tuple) satisfy the same constraints.
_IMMUTABLE = (type(None), bool, int, float, str, np.bool_, np.integer, np.floating, np.str_)

#: Per estimator class: its parameter names, and its constraints as scikit-learn's
#: constraint objects (``make_constraint`` of each entry of ``_parameter_constraints``).
_NAMES = {}
_CONSTRAINTS = {}


def param_names(cls):
    """The parameter names of an estimator class, sorted, as ``get_params`` lists them
    (the arguments of its ``__init__``): a tuple, and the same names as a frozenset."""
    names = _NAMES.get(cls)
    if names is None:
        signature = inspect.signature(cls.__init__).parameters.values()
        ordered = tuple(sorted(
            p.name for p in signature if p.name != "self" and p.kind != p.VAR_KEYWORD))
        names = _NAMES[cls] = (ordered, frozenset(ordered))
    return names


def _constraints(cls):
    """The constraint objects of ``cls._parameter_constraints``, built once per class."""
    declared = cls._parameter_constraints
    found = _CONSTRAINTS.get(cls)
    if found is None or found[0] is not declared:
        built = {name: [make_constraint(c) for c in options]
                 for name, options in declared.items() if options != "no_validation"}
        found = _CONSTRAINTS[cls] = (declared, built)
    return found[1]


def _types(values):
    """The type of each value, with the types of a tuple's items."""
    return tuple((tuple, *map(type, v)) if type(v) is tuple else type(v) for v in values)


def _immutable(value):
    return isinstance(value, _IMMUTABLE) or (
        type(value) is tuple and all(isinstance(v, _IMMUTABLE) for v in value))


def check_param_values(est, reused):
    """Check ``est``'s parameters as scikit-learn's ``_validate_params`` does.

    Values of the same types as, and equal to, immutable values that last passed
    (``reused.passed_params``) pass again without a check. Otherwise each value is checked
    against the class's constraint objects, built once per class; a value that
    satisfies none makes scikit-learn's own ``_validate_params`` raise its
    ``InvalidParameterError``.

    Parameters
    ----------
    est : estimator
    reused : Reused
        Where the types and values that passed are kept.
    """
    names, _ = param_names(type(est))
    values = tuple(getattr(est, name) for name in names)
    types = _types(values)
    passed = reused.passed_params
    # Types first: equal types make the values immutable, so comparing them is safe.
    if passed is not None and types == passed[0] and values == passed[1]:
        return
    constraints = _constraints(type(est))
    for name, value in zip(names, values):
        options = constraints.get(name)
        if options is not None and not any(c.is_satisfied_by(value) for c in options):
            est._validate_params()  # scikit-learn's message naming the parameter
            return
    reused.passed_params = (types, values) if all(map(_immutable, values)) else None

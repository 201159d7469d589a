"""The recipe's next steps for each verdict, tried on the data and made concrete."""

import numbers
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone

from ._common import find_param, fmt
from .curves import validation_curve

DEFAULT_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
DEFAULT_DROPOUTS = (0.1, 0.2, 0.3, 0.5)


@dataclass
class Step:
    """One of the recipe's next steps.

    Attributes
    ----------
    title : str
        The remedy, e.g. ``"bigger network"``.
    action : str
        What to do, with concrete parameter values.
    params : dict
        The constructor parameters that carry it out (empty when it is advice only).
    outcome : str
        What trying it did on the data (empty when not tried).
    """

    title: str
    action: str
    params: dict = field(default_factory=dict)
    outcome: str = ""


def _curve_errors(curve, classifier):
    if classifier:
        return 1.0 - curve.mean("train_scores"), 1.0 - curve.mean("validation_scores")
    return curve.mean("train_losses"), curve.mean("validation_losses")


def _hidden_sizes(estimator, key):
    sizes = estimator.get_params(deep=True)[key]
    if isinstance(sizes, numbers.Integral):
        return (int(sizes),)
    return tuple(int(s) for s in sizes)


def bias_steps(estimator, evaluate, train_idx, train_error, width_factor, epochs_factor):
    """Bigger network, longer training, better optimizer, new architecture, in order.

    Returns the steps and, for each one tried, (training error reached, its params).
    """
    planned = []
    params = estimator.get_params(deep=True)
    key = find_param(estimator, "hidden_layer_sizes")
    if key is not None:
        sizes = _hidden_sizes(estimator, key)
        wider = tuple(s * width_factor for s in sizes) if sizes else (16,)
        planned.append(Step("bigger network", f"{key} {sizes} -> {wider}", {key: wider}))
    key = find_param(estimator, "max_iter") or find_param(estimator, "epochs")
    if key is not None:
        longer = params[key] * epochs_factor
        planned.append(Step("train longer", f"{key} {params[key]} -> {longer}", {key: longer}))
    key = find_param(estimator, "solver") or find_param(estimator, "optimizer")
    if key is not None and params[key] in ("sgd", "momentum"):
        planned.append(Step("better optimizer", f"{key} {params[key]!r} -> 'adam'",
                            {key: "adam"}))
    probe_errors = []
    if planned:
        tr_err, va_err = evaluate([(s.params, train_idx) for s in planned],
                                  "diagnose: high-bias probes")
        for s, te, ve in zip(planned, tr_err, va_err):
            s.outcome = (f"training error {fmt(train_error)} -> {fmt(te)} "
                         f"(validation {fmt(ve)})")
            probe_errors.append((float(te), s.params))
    else:
        planned.append(Step("bigger network", "add units or layers"))
    if "better optimizer" not in [s.title for s in planned]:
        planned.append(Step("better optimizer", "momentum, Nesterov or Adam, or tune the "
                            "learning rate"))
    planned.append(Step("new architecture", "other activations, features or model family; "
                        "more data does little for bias"))
    return planned, probe_errors


def variance_steps(estimator, X, y, base, evaluate, train_idx, split, validation_error, gap,
                    alpha_range, dropout_range, classifier, n_jobs, progress, group=True):
    """More data, regularization (best alpha / dropout by a validation curve), new architecture."""
    steps = []
    half = train_idx[: max(2, len(train_idx) // 2)]
    _, va_half = evaluate([({}, half)], "diagnose: half data")
    drop = float(va_half[0]) - validation_error
    trend = ("still falling: more data should help" if drop > 0.1 * max(gap, 1e-12)
             else "barely moved: more data alone may not help much")
    steps.append(Step("more data", "collect more training samples", {},
                      f"validation error with half the training set {fmt(va_half[0])}, with "
                      f"all of it {fmt(validation_error)}: {trend}"))

    estimator_b = _with(estimator, base)
    curves, best = {}, []
    sweeps = []
    for name, default, given in (("alpha", DEFAULT_ALPHAS, alpha_range),
                                 ("dropout", DEFAULT_DROPOUTS, dropout_range)):
        key = find_param(estimator, name)
        if key is not None:
            sweeps.append((key, list(default if given is None else given)))
    skipped = []
    for name, values in sweeps:
        try:
            vc = validation_curve(estimator_b, X, y, name, values, cv=split, n_jobs=n_jobs,
                                  scoring="accuracy" if classifier else None,
                                  progress=progress, group=group)
        except (ValueError, TypeError) as exc:
            # e.g. dropout with an lbfgs solver: report it and go on with the other sweeps.
            skipped.append(f"{name} not tried ({' '.join(str(exc).split())[:120]})")
            continue
        curves[name] = vc
        tr_err, va_err = _curve_errors(vc, classifier)
        k = len(va_err) - 1 - int(np.argmin(va_err[::-1]))  # ties: the stronger value
        best.append((float(va_err[k]), name, values[k], float(tr_err[k])))
    if best:
        va, name, value, tr = min(best, key=lambda b: b[0])
        others = "; ".join(f"best {n} = {v!r}: validation {fmt(e)}" for e, n, v, _ in best
                           if n != name)
        notes = "; ".join(filter(None, [others, *skipped]))
        outcome = (f"validation error {fmt(validation_error)} -> {fmt(va)}, gap "
                   f"{fmt(gap)} -> {fmt(va - tr)}" + (f" ({notes})" if notes else ""))
        steps.append(Step("regularization", f"{name} = {value!r} (best of "
                          f"{curves[name].param_range} by validation error)", {name: value},
                          outcome))
        suggested = {name: value}
    else:
        steps.append(Step("regularization", "add L2 / dropout / early stopping", {},
                          "; ".join(skipped)))
        suggested = {}
    steps.append(Step("new architecture", "a smaller or differently shaped network, better "
                      "features"))
    return steps, suggested, curves


def _with(estimator, params):
    return clone(estimator).set_params(**params) if params else estimator


def _scales_inputs(estimator):
    """Whether ``estimator`` standardizes its inputs (a Pipeline step that is a scaler)."""
    inner = getattr(estimator, "regressor", estimator)
    return any("Scaler" in type(step).__name__ for _, step in getattr(inner, "steps", []))


def constant_steps(estimator, evaluate, train_idx, train_error, classifier, y_train):
    """Steps for a model no better than a constant: scale the target, check the rate.

    Returns the steps and the parameters of the most promising one tried (empty when
    the best remedy is not a parameter, such as wrapping the target's scaling).
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.preprocessing import StandardScaler

    steps, suggested = [], {}
    y = np.asarray(y_train, dtype=np.float64) if not classifier else None
    if not classifier and not isinstance(estimator, TransformedTargetRegressor):
        wrapped = TransformedTargetRegressor(regressor=clone(estimator),
                                             transformer=StandardScaler())
        tr_err, va_err = evaluate([({}, train_idx)], "diagnose: scaled target", wrapped,
                                  prefix="regressor__")
        steps.append(Step(
            "scale the target", f"the target has mean {fmt(y.mean())} and standard "
            f"deviation {fmt(y.std())}; train on (y - mean) / std, e.g. "
            f"TransformedTargetRegressor(regressor=model, transformer=StandardScaler())",
            {}, f"training error {fmt(train_error)} -> {fmt(tr_err[0])} (validation "
                f"{fmt(va_err[0])})"))
    key = find_param(estimator, "learning_rate_init") or find_param(estimator, "lr")
    if key is not None:
        rate = estimator.get_params(deep=True)[key]
        tried = [{key: rate / 10}, {key: rate * 10}]
        tr_err, va_err = evaluate([(p, train_idx) for p in tried], "diagnose: learning rate")
        best = int(np.argmin(tr_err))
        outcomes = "; ".join(f"{key}={p[key]:g}: training error {fmt(t)} (validation "
                             f"{fmt(v)})" for p, t, v in zip(tried, tr_err, va_err))
        steps.append(Step("check the learning rate", f"{key} {rate:g} -> {rate / 10:g} or "
                          f"{rate * 10:g}", tried[best], outcomes))
        if tr_err[best] < train_error:
            suggested = dict(tried[best])
    if not _scales_inputs(estimator):
        steps.append(Step("scale the inputs", "standardize X, e.g. make_pipeline("
                          "StandardScaler(), model): gradient descent trains an MLP poorly "
                          "on features of very different scales"))
    steps.append(Step("train longer", "once the loss falls, more epochs (max_iter) and the "
                      "bias / variance diagnosis again"))
    return steps, suggested

"""The bias-variance decomposition along one parameter: :func:`bias_variance` per value."""

import time
from dataclasses import dataclass

import numpy as np

from ._common import as_seed_sequence, child_seeds, fmt, param_label
from ._group import check_group, run_fits
from .decomposition import _assemble, _fit_predict, _fit_predict_group, _validate

__all__ = ["BiasVarianceCurve", "bias_variance_curve"]


@dataclass(repr=False)
class BiasVarianceCurve:
    """Result of :func:`bias_variance_curve`: one :class:`BiasVariance` per parameter value.

    Attributes
    ----------
    param_name : str
    param_range : list
    results : list of BiasVariance
    """

    param_name: str
    param_range: list
    results: list

    def _column(self, attr):
        return np.array([getattr(r, attr) for r in self.results])

    @property
    def expected_loss(self):
        """ndarray of shape (n_values,)."""
        return self._column("expected_loss")

    @property
    def bias_squared(self):
        """ndarray of shape (n_values,)."""
        return self._column("bias_squared")

    @property
    def variance(self):
        """ndarray of shape (n_values,)."""
        return self._column("variance")

    @property
    def net_variance(self):
        """ndarray of shape (n_values,): ``expected_loss - bias_squared`` (Domingos for 0-1)."""
        return self._column("net_variance")

    @property
    def baseline(self):
        """The test loss of a constant predictor (the same for every value), or None."""
        return self.results[0].baseline if self.results else None

    def band(self, term):
        """ndarray of shape (n_values, 2): the 10-90% band of ``term`` (see
        :attr:`BiasVariance.bands`), NaN without one."""
        return np.array([r.bands.get(term, (np.nan, np.nan)) for r in self.results])

    def __str__(self):
        zero_one = bool(self.results) and self.results[0].loss == "0-1"
        label = param_label(self.param_name)
        w = max(14, len(label), *(len(str(v)) for v in self.param_range))
        if zero_one:  # expected = bias + net variance; net = unbiased - biased variance
            head, terms = "expected      bias  net var.  variance", ("expected_loss",
                          "bias_squared", "net_variance", "variance")
        else:
            head, terms = "expected     bias²  variance", ("expected_loss", "bias_squared",
                                                          "variance")
        rows = [f"bias-variance curve over {self.param_name}", f"{label:>{w}}  {head}"]
        for v, r in zip(self.param_range, self.results):
            rows.append(f"{v!s:>{w}}  " + "  ".join(f"{fmt(getattr(r, t)):>8}" for t in terms))
        if self.baseline is not None:
            rows.append(f"{'constant':>{w}}  {fmt(self.baseline):>8}")
        return "\n".join(rows)

    __repr__ = __str__


def bias_variance_curve(estimator, X_train, y_train, X_test, y_test, param_name, param_range,
                        n_rounds=20, loss="mse", random_state=None, n_jobs=None, *,
                        seed_estimator=True, progress=False, group=True):
    """:func:`bias_variance` for every value of one constructor parameter, in one parallel run.

    Every value sees the same bootstrap samples and estimator seeds (common random numbers),
    so differences between values are due to the parameter, not to resampling noise.

    Parameters
    ----------
    param_name : str
        A parameter of ``estimator`` (``alpha``, ``dropout``, ``hidden_layer_sizes``,
        ``step__alpha`` in a Pipeline, ...).
    param_range : sequence
        Values to try.
    Other parameters
        As in :func:`bias_variance`; every (value, round) fit of nnopt_fast's MLPs joins
        one group.

    Returns
    -------
    BiasVarianceCurve
    """
    t0 = time.perf_counter()
    y_train, y_test, n_rounds = _validate(estimator, X_train, y_train, X_test, y_test,
                                          n_rounds, loss)
    param_range = list(param_range)
    if not param_range:
        raise ValueError("param_range must hold at least one value")
    if param_name not in estimator.get_params(deep=True):
        raise ValueError(f"param_name {param_name!r} is not a parameter of "
                         f"{type(estimator).__name__}")
    group = check_group(group)
    seeds = child_seeds(as_seed_sequence(random_state), n_rounds)
    items = [({param_name: value}, boot, est_seed if seed_estimator else None)
             for value in param_range for boot, est_seed in seeds]
    rounds = run_fits(estimator, items, _fit_predict, _fit_predict_group,
                      (X_train, y_train, X_test), n_jobs, progress,
                      f"bias-variance over {param_name}", group)
    results = [
        _assemble(rounds[k * n_rounds:(k + 1) * n_rounds], y_train, y_test, loss, n_rounds,
                  False, t0)
        for k in range(len(param_range))
    ]
    return BiasVarianceCurve(param_name=param_name, param_range=param_range, results=results)

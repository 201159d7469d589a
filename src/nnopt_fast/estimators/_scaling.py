"""The check of X's column scales behind :class:`ScalingWarning` and the divergence advice."""

import warnings

import numpy as np
import scipy.sparse

#: Above this ratio of the largest to the smallest non-zero column std, ``fit`` warns.
SCALE_RATIO_LIMIT = 1e3
#: Above this ``|mean| / std`` of a non-constant column, ``fit`` warns.
OFFSET_RATIO_LIMIT = 1e2
#: Above this root mean square of a column (or of y) ``fit`` warns: the default learning
#: rates and the Glorot initialization assume inputs of about unit scale.
MAGNITUDE_LIMIT = 1e3
#: The scaling check looks at no more rows than this (an evenly strided subsample).
_SCALE_CHECK_ROWS = 2048


class ScalingWarning(UserWarning):
    """``fit`` saw input columns whose scales differ wildly (see the message for the fix)."""


def _column_moments(X):
    """Mean, std and root mean square of each column of (a subsample of) X, in float64.

    Each column is divided by its largest magnitude first, so that inputs near the
    float64 limit give finite statistics instead of overflowing.
    """
    Xs = X[:: -(-X.shape[0] // _SCALE_CHECK_ROWS)]
    if scipy.sparse.issparse(Xs):
        return _sparse_column_moments(Xs)
    Xs = np.asarray(Xs, dtype=np.float64)
    if Xs.ndim == 1:
        Xs = Xs.reshape(-1, 1)
    peak = np.abs(Xs).max(axis=0)
    peak[peak == 0] = 1.0
    unit = Xs / peak
    mean = unit.mean(axis=0) * peak
    std = unit.std(axis=0) * peak
    rms = np.sqrt((unit * unit).mean(axis=0)) * peak
    return mean, std, rms


def _sparse_column_moments(Xs):
    """:func:`_column_moments` of a sparse subsample, its implicit zeros counted, from its
    non-zeros alone (a dense copy of a wide sparse X would not fit in memory)."""
    Xs = scipy.sparse.csc_matrix(Xs, dtype=np.float64)
    n = Xs.shape[0]
    peak = np.zeros(Xs.shape[1])
    counts = np.diff(Xs.indptr)
    live = counts > 0
    peak[live] = np.maximum.reduceat(np.abs(Xs.data), Xs.indptr[:-1][live]) if Xs.nnz else 0
    peak[peak == 0] = 1.0
    unit = Xs.data / np.repeat(peak, counts)
    cols = np.repeat(np.arange(Xs.shape[1]), counts)
    mean = np.bincount(cols, unit, Xs.shape[1]) / n
    sq = np.bincount(cols, unit * unit, Xs.shape[1]) / n
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    return mean * peak, std * peak, np.sqrt(sq) * peak


def scaling_report(X):
    """A description of badly scaled columns of X, or None when X looks fine.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), finite

    Returns
    -------
    str or None
    """
    if X.shape[0] < 1 or X.shape[1] < 1:
        return None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mean, std, rms = _column_moments(X)
        seen = []
        j = int(rms.argmax())
        if rms[j] > MAGNITUDE_LIMIT:
            seen.append(f"column {j} has a root mean square of {rms[j]:.3g} (> "
                        f"{MAGNITUDE_LIMIT:g}; the default learning rates assume inputs of "
                        f"about unit scale)")
        # Constant columns carry no signal and do no harm to the step size: skip them.
        live = np.flatnonzero(std > 1e-12 * np.maximum(1.0, np.abs(mean)))
        if X.shape[0] < 2 or live.size == 0:
            return "; ".join(seen) if seen else None
        s = std[live]
        if live.size >= 2 and s.max() > SCALE_RATIO_LIMIT * s.min():
            hi, lo = live[s.argmax()], live[s.argmin()]
            seen.append(f"column standard deviations range from {std[lo]:.3g} (column {lo}) "
                        f"to {std[hi]:.3g} (column {hi}), a ratio of {std[hi] / std[lo]:.3g} "
                        f"> {SCALE_RATIO_LIMIT:g}")
        off = np.abs(mean[live]) / s
        if off.max() > OFFSET_RATIO_LIMIT:
            j = live[off.argmax()]
            seen.append(f"column {j} has mean {mean[j]:.4g}, {off.max():.3g} standard "
                        f"deviations away from 0 (> {OFFSET_RATIO_LIMIT:g})")
    return "; ".join(seen) if seen else None


def target_magnitude(Y):
    """The root mean square of the largest target column when it is above the limit."""
    with np.errstate(over="ignore", invalid="ignore"):
        rms = _column_moments(np.asarray(Y).reshape(len(Y), -1))[2].max()
    return float(rms) if rms > MAGNITUDE_LIMIT else None


def warn_scaling(name, X, stacklevel):
    """Emit the :class:`ScalingWarning` for X when its columns look badly scaled."""
    report = scaling_report(X)
    if report:
        warnings.warn(
            f"{name}.fit: X's columns differ wildly in scale: {report}. Gradient descent "
            f"trains an MLP poorly on unscaled inputs; standardize them, e.g. "
            f"make_pipeline(StandardScaler(), {name}()).",
            ScalingWarning, stacklevel=stacklevel + 1)

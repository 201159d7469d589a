"""Reference output layers: softmax, logistic and identity, with their losses and gradients."""

import numpy as np

from ..codes import OUTPUTS
from .activations import logistic

__all__ = ["softmax_cross_entropy", "logistic_cross_entropy", "squared_error",
           "poisson_deviance", "output_loss"]


def _weighted(G, L, sw, out):
    """Write the loss gradient ``G`` (rows times their sample weights ``sw``, if any) to
    ``out``; return the weighted sum of the per-row losses ``L``."""
    if sw is not None:
        G *= sw[:, None]
        L = L * sw
    out[...] = G
    return float(L.sum())


def softmax_cross_entropy(Z, y, sw, out):
    """Softmax output with cross-entropy on integer labels.

    ``P = softmax(Z)`` row-wise (max-shifted); loss ``L_i = -log(clip(P[i, y_i], eps, 1 - eps))``
    with ``eps`` the dtype's machine epsilon (scikit-learn's clipping);
    gradient ``out = (P - onehot(y)) * sw[:, None]``, not yet divided by the batch weight.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_classes)
        Output pre-activations.
    y : ndarray of shape (n_samples,), integer in [0, n_classes)
    sw : ndarray of shape (n_samples,) or None
        Sample weights; None means all ones.
    out : ndarray of shape (n_samples, n_classes)
        Written with the loss gradient w.r.t. Z; may be ``Z`` itself.

    Returns
    -------
    loss : float
        ``sum_i sw_i * L_i`` (a weighted sum, not a mean), accumulated in float64.
    """
    n = Z.shape[0]
    S = Z - Z.max(axis=1, keepdims=True) if n else Z.copy()
    E = np.exp(S)
    P = E / E.sum(axis=1, keepdims=True)
    eps = np.finfo(Z.dtype).eps
    p_true = np.clip(P[np.arange(n), y], eps, 1 - eps)
    L = -np.log(p_true.astype(np.float64))
    P[np.arange(n), y] -= Z.dtype.type(1.0)
    return _weighted(P, L, sw, out)


def logistic_cross_entropy(Z, Y, sw, out):
    """Logistic outputs with binary cross-entropy, summed over outputs.

    ``P = 1 / (1 + exp(-Z))``, ``L_i = -sum_k [Y log p + (1 - Y) log(1 - p)]`` with ``p``
    clipped to ``[eps, 1 - eps]``; gradient ``out = (P - Y) * sw[:, None]``.

    Parameters
    ----------
    Z, Y : ndarray of shape (n_samples, n_outputs)
        ``Y`` holds 0/1 targets in the dtype of ``Z``.
    sw : ndarray of shape (n_samples,) or None
    out : ndarray of shape (n_samples, n_outputs)

    Returns
    -------
    loss : float
        ``sum_i sw_i * L_i``.
    """
    P = logistic(Z)
    eps = np.finfo(Z.dtype).eps
    Pc = np.clip(P, eps, 1 - eps).astype(np.float64)
    Y64 = Y.astype(np.float64)
    L = -(Y64 * np.log(Pc) + (1.0 - Y64) * np.log1p(-Pc)).sum(axis=1)
    G = P - Y
    return _weighted(G, L, sw, out)


def squared_error(Z, Y, sw, out):
    """Identity output with squared error ``L_i = 1/2 ||z_i - y_i||^2``.

    Gradient ``out = (Z - Y) * sw[:, None]``.

    Parameters
    ----------
    Z, Y : ndarray of shape (n_samples, n_outputs)
    sw : ndarray of shape (n_samples,) or None
    out : ndarray of shape (n_samples, n_outputs)

    Returns
    -------
    loss : float
        ``sum_i sw_i * L_i``.
    """
    G = Z - Y
    L = 0.5 * (G.astype(np.float64) ** 2).sum(axis=1)
    return _weighted(G, L, sw, out)


def poisson_deviance(Z, Y, sw, out):
    """Exponential output with half the Poisson deviance, summed over outputs.

    ``P = exp(Z)``; ``L_i = sum_k [Y log(Y / P) - Y + P] = sum_k [Y log Y - Y Z - Y + P]``
    (``Y log Y = 0`` at ``Y = 0``), scikit-learn's ``poisson`` loss of its MLP; gradient
    ``out = (P - Y) * sw[:, None]`` (the canonical link: d L / d Z = P - Y).

    Parameters
    ----------
    Z, Y : ndarray of shape (n_samples, n_outputs)
        ``Y`` holds non-negative targets (counts, rates) in the dtype of ``Z``.
    sw : ndarray of shape (n_samples,) or None
    out : ndarray of shape (n_samples, n_outputs)

    Returns
    -------
    loss : float
        ``sum_i sw_i * L_i``, accumulated in float64.
    """
    with np.errstate(over="ignore"):
        P = np.exp(Z)
    Y64, Z64 = Y.astype(np.float64), Z.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(Y64 > 0, Y64 * np.log(np.where(Y64 > 0, Y64, 1.0)), 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        L = (ylogy - Y64 * Z64 - Y64 + P.astype(np.float64)).sum(axis=1)
    G = P - Y
    return _weighted(G, L, sw, out)


#: Loss of each output code.
_LOSS = {OUTPUTS["softmax"]: softmax_cross_entropy,
         OUTPUTS["logistic"]: logistic_cross_entropy,
         OUTPUTS["identity"]: squared_error,
         OUTPUTS["exp"]: poisson_deviance}


def output_loss(out_code, Z, T, sw, out):
    """The loss of output layer ``output`` (softmax, logistic, identity or exp): see those."""
    return _LOSS[out_code](Z, T, sw, out)

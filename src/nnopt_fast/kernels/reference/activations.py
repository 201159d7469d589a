"""Reference activations: the dense layer's forward pass, and backward through g."""

import numpy as np

from ..codes import ACTIVATIONS, OUTPUTS

__all__ = ["logistic", "activate", "derivative", "dense_forward", "activation_backward",
           "output_activation"]


def logistic(Z):
    """``1 / (1 + exp(-Z))`` in the dtype of ``Z``."""
    # exp(-Z) overflows (harmlessly, to inf -> 0) for very negative Z.
    with np.errstate(over="ignore"):
        return Z.dtype.type(1.0) / (Z.dtype.type(1.0) + np.exp(-Z))


def activate(Z, activation):
    """``g(Z)`` for an activation name (a new array, or ``Z`` itself for identity)."""
    if activation == "tanh":
        return np.tanh(Z)
    if activation == "relu":
        return np.maximum(Z, Z.dtype.type(0))
    if activation == "logistic":
        return logistic(Z)
    if activation == "identity":
        return Z
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")


def derivative(H, activation):
    """``g'`` expressed through the activation's output ``H = g(Z)``."""
    one = H.dtype.type(1.0)
    if activation == "tanh":
        return one - H * H
    if activation == "relu":
        return (H > 0).astype(H.dtype)
    if activation == "logistic":
        return H * (one - H)
    if activation == "identity":
        return np.ones_like(H)
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")


#: Activation names by code.
ACTIVATION_NAMES = {v: k for k, v in ACTIVATIONS.items()}


def dense_forward(A, W, b, act, out):
    """Dense layer with fused bias and activation: ``out = g(A @ W + b)``.

    Parameters
    ----------
    A : ndarray of shape (n_samples, n_in), float32 or float64
        Input activations (in an epoch on sparse X, the input layer's batch as a SciPy
        sparse matrix: its product with W is dense).
    W : ndarray of shape (n_in, n_out), same dtype
    b : ndarray of shape (n_out,), same dtype
    activation : {"tanh", "relu", "logistic", "identity"}
    out : ndarray of shape (n_samples, n_out), same dtype
        Written in place; also returned.

    Returns
    -------
    out : ndarray
    """
    Z = np.asarray(A @ W)
    Z += b
    out[...] = activate(Z, ACTIVATION_NAMES[act])


def activation_backward(H, dA, act, out, M):
    """Backward through an activation, from its outputs: ``out = dA * g'(H) [* M]``.

    ``H = g(Z)`` is the activation's output before dropout; ``g'`` is computed from it
    (tanh: ``1 - H**2``, logistic: ``H (1 - H)``, relu: ``H > 0``, identity: 1).
    ``M``, when given, is the dropout mask applied in the forward pass (values 0 or
    ``1/keep``), so that the gradient flows only through the units that were kept.

    Parameters
    ----------
    H, dA : ndarray of shape (n_samples, n_units)
    activation : str
    out : ndarray of shape (n_samples, n_units)
        Written in place (may be ``dA`` itself); also returned.
    M : ndarray of shape (n_samples, n_units) or None
    """
    g = dA * derivative(H, ACTIVATION_NAMES[act])
    if M is not None:
        g *= M
    out[...] = g


def output_activation(output, Z):
    """An output layer's activation of pre-activations ``Z`` (a new array).

    softmax: row-wise, max-shifted; logistic: ``1 / (1 + exp(-Z))``; identity: a copy;
    exp: ``exp(Z)``.
    """
    if output == "softmax":
        S = Z - Z.max(axis=1, keepdims=True)
        E = np.exp(S)
        return E / E.sum(axis=1, keepdims=True)
    if output == "logistic":
        return logistic(Z)
    if output == "identity":
        return Z.copy()
    if output == "exp":
        with np.errstate(over="ignore"):
            return np.exp(Z)
    raise ValueError(f"output must be one of {sorted(OUTPUTS)}, got {output!r}")

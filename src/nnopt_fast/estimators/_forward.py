"""The estimators' forward pass: inference, validation scores and the L-BFGS loss use it."""

import numpy as np
import scipy.sparse

from ..kernels import reference as ref


def forward(coefs, intercepts, X, activation):
    """Output-layer pre-activations of the network for X.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        ``coefs[l]`` of shape (n_in_l, n_out_l), ``intercepts[l]`` of shape (n_out_l,).
    X : ndarray of shape (n_samples, n_features), float32 or float64, C-contiguous
    activation : str
        The hidden activation (the output layer is left linear).

    Returns
    -------
    Z : ndarray of shape (n_samples, n_outputs), X's dtype (a new array)
    """
    A = X
    last = len(coefs) - 1
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        out = np.empty((A.shape[0], W.shape[1]), dtype=X.dtype)
        ref.dense_forward(A, np.asarray(W, X.dtype), np.asarray(b, X.dtype),
                          activation if l < last else "identity", out)
        A = out
    return A


def as_dense(X, dtype=None):
    """C-contiguous dense copy-or-view of a validated X (sparse input is densified)."""
    if scipy.sparse.issparse(X):
        X = X.toarray()
    return np.ascontiguousarray(X, dtype=dtype)


def data_loss(out_activation, Z, T, sw, n_outputs, dZ=None):
    """scikit-learn's data loss (no penalty) of pre-activations Z against kernel targets T.

    The sample-weighted mean over samples (and, for squared error, over outputs, where
    the kernel sums). ``dZ`` (Z's shape) receives the kernel's loss gradient when given.
    """
    if dZ is None:
        dZ = np.empty_like(Z)
    total = ref.output_loss(out_activation, Z, T, sw, dZ)
    S = float(Z.shape[0]) if sw is None else float(sw.sum(dtype=np.float64))
    return total / S / (n_outputs if out_activation == "identity" else 1)

"""The estimators' forward pass: inference and validation scores run it compiled."""

import weakref

import numpy as np
import scipy.sparse

from ..kernels import reference as ref
from ..kernels.inference import Network

#: The compiled network of each estimator, keyed by the estimator (kept off the
#: estimator itself, so pickling, cloning and skops never see it).
_NETWORKS = weakref.WeakKeyDictionary()


def network(coefs, intercepts, activation, output="identity", owner=None):
    """The compiled forward pass of these weights (:class:`~nnopt_fast.kernels.inference.Network`).

    With ``owner`` (an estimator), it is built once and reused while the estimator holds
    the same weight arrays, activation and output.
    """
    coefs = [np.ascontiguousarray(W) for W in coefs]
    dtype = coefs[0].dtype if coefs[0].dtype in (np.float32, np.float64) else np.float64
    coefs = [np.ascontiguousarray(W, dtype) for W in coefs]
    intercepts = [np.ascontiguousarray(b, dtype) for b in intercepts]
    if owner is None:
        return Network(coefs, intercepts, activation, output)
    cached = _NETWORKS.get(owner)
    if (cached is None or cached[0] != (activation, output) or len(cached[1].coefs) != len(coefs)
            or any(a is not b for a, b in zip(cached[1].coefs + cached[1].intercepts,
                                               coefs + intercepts))):
        cached = ((activation, output), Network(coefs, intercepts, activation, output))
        _NETWORKS[owner] = cached
    return cached[1]


def forward(coefs, intercepts, X, activation, n_threads=None):
    """Output-layer pre-activations of the network for X, by the compiled forward pass.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        ``coefs[l]`` of shape (n_in_l, n_out_l), ``intercepts[l]`` of shape (n_out_l,).
    X : ndarray or CSR matrix of shape (n_samples, n_features), float32 or float64
    activation : str
        The hidden activation (the output layer is left linear).
    n_threads : int >= 1, -1 or None
        The estimator's ``n_threads`` (the most threads a large X runs on).

    Returns
    -------
    Z : ndarray of shape (n_samples, n_outputs), X's dtype (a new array)
    """
    net = network([np.asarray(W, X.dtype) for W in coefs],
                  [np.asarray(b, X.dtype) for b in intercepts], activation)
    return net(as_rows(X), apply_output=False, n_threads=n_threads)


def as_rows(X, dtype=None):
    """A validated X as the kernels take it: a C-contiguous array, or for sparse input a
    CSR matrix (never densified), in ``dtype`` (default: X's own)."""
    if scipy.sparse.issparse(X):
        X = X.tocsr()
        return X if dtype is None or X.dtype == dtype else X.astype(dtype)
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

"""Sparse X in the Numba epochs: the first layer's products on a batch's CSR non-zeros."""

from typing import NamedTuple

import numpy as np

from .._numba_config import jit
from .rows import column_sums

__all__ = ["Csr", "TrainData", "train_data", "is_csr", "csr_forward", "csr_backward"]


class Csr(NamedTuple):
    """CSR rows: row r's non-zeros are ``data[indptr[r]:indptr[r + 1]]``, in columns
    ``indices[...]`` (int64). Empty arrays stand for a dense X."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray


class TrainData(NamedTuple):
    """The epoch's data as the compiled epochs take it (one type for dense and sparse X).

    ``X``: the dense (n_samples, n_in) X, or (0, n_in) for a sparse X, whose rows are
    ``csr``; ``y``, ``Y``: as :class:`nnopt_fast.kernels.epoch.EpochData`; ``sw``: the
    sample weights, empty without them.
    """

    X: np.ndarray
    y: np.ndarray
    Y: np.ndarray
    sw: np.ndarray
    csr: Csr


def train_data(data):
    """:class:`TrainData` of an :class:`nnopt_fast.kernels.epoch.EpochData` (its X a dense
    array or a :class:`nnopt_fast.kernels.epoch.SparseRows`)."""
    X = data.X
    dt = X.data.dtype if hasattr(X, "indptr") else X.dtype
    sw = np.zeros(0, dtype=dt) if data.sw is None else data.sw
    if hasattr(X, "indptr"):
        return TrainData(np.zeros((0, X.shape[1]), dtype=dt), data.y, data.Y, sw,
                         Csr(X.data, X.indices, X.indptr))
    empty = np.zeros(0, dtype=np.int64)
    return TrainData(X, data.y, data.Y, sw, Csr(np.zeros(0, dtype=dt), empty, empty))


@jit(helper=True, inline=True)
def is_csr(data):
    """Whether the epoch's X is sparse (a CSR X has ``n_samples + 1 >= 1`` row pointers)."""
    return data.csr.indptr.shape[0] > 0


@jit(helper=True, inline=True)
def _add_scaled(v, x, y):
    """``y <- y + v x``, in place."""
    for j in range(y.shape[0]):
        y[j] = y[j] + v * x[j]


@jit(helper=True)
def csr_forward(csr, idx, W, out):
    """``out = X[idx] W`` for CSR rows: each row sums its non-zeros' rows of W, in order."""
    out[:, :] = 0
    for i in range(idx.shape[0]):
        r = idx[i]
        for p in range(csr.indptr[r], csr.indptr[r + 1]):
            _add_scaled(csr.data[p], W[csr.indices[p]], out[i])


@jit(helper=True)
def csr_backward(csr, idx, dZ, s, dW, db):
    """``dW = (X[idx]^T dZ) s``, each non-zero scattering into its column's row of dW (the
    other rows are 0), and ``db = s sum(dZ)``."""
    dW[:, :] = 0
    for i in range(idx.shape[0]):
        r = idx[i]
        for p in range(csr.indptr[r], csr.indptr[r + 1]):
            _add_scaled(csr.data[p], dZ[i], dW[csr.indices[p]])
    dW *= s
    column_sums(dZ, s, db)

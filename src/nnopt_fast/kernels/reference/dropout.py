"""Reference dropout masks, from the counter-based generator of :mod:`..hashing`."""

import numpy as np

from ..hashing import DROPOUT_BITS, GOLDEN, dropout_key, dropout_threshold, mix64_array

__all__ = ["dropout_mask", "dropout_key", "dropout_threshold"]


def dropout_mask(seed, layer, step, row0, keep, out):
    """Inverted-dropout mask from a counter-based generator.

    ``out[i, j] = 1/keep`` if unit ``(row0 + i, j)`` of ``layer`` is kept at ``step``, else 0.
    Element ``e = (row0 + i) * n_units + j`` is kept iff
    ``mix(k + (e+1) G) >> 40 < int(keep * 2**24)`` where ``k = dropout_key(seed, layer, step)``.
    The mask depends only on (seed, layer, step, element index), so any backend or
    thread layout that covers rows ``row0 .. row0 + n_samples`` reproduces it exactly.

    Parameters
    ----------
    seed : int in [0, 2**64)
    layer, step, row0 : int >= 0
    keep : float in (0, 1]
        Keep probability, ``1 - dropout``.
    out : ndarray of shape (n_samples, n_units), float32 or float64
        Written in place; also returned.
    """
    n_rows, n_cols = out.shape
    key = np.uint64(dropout_key(seed, layer, step))
    e = np.arange(row0 * n_cols + 1, (row0 + n_rows) * n_cols + 1, dtype=np.uint64)
    bits = mix64_array(e * np.uint64(GOLDEN) + key) >> np.uint64(64 - DROPOUT_BITS)
    scale = out.dtype.type(1.0 / keep)
    kept = bits < np.uint64(dropout_threshold(keep))
    out[...] = np.where(kept, scale, out.dtype.type(0)).reshape(n_rows, n_cols)

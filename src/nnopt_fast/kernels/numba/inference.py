"""Compiled inference of the Numba backend: a network's forward pass, block by block."""

import math
from typing import NamedTuple

import numpy as np

from .._numba_config import jit
from .bodies import _readonly
from .borrow import as_flat, as_matrix, borrow
from .rows import bias_act
from .scalar import EXP_OUT, IDENTITY, LOGISTIC_OUT, NONFINITE, OK, SOFTMAX

__all__ = ["BLOCK_ROWS", "Layers", "NumbaNetwork", "forward_blocks", "output_rows"]

#: Rows per block of the forward pass (as the C forward's): the workspace holds two
#: blocks of the widest hidden layer, whatever the number of rows.
BLOCK_ROWS = 256


class Layers(NamedTuple):
    """A network's weights ``W_l`` (n_{l-1}, n_l) and biases ``b_l`` (n_l,), as tuples."""

    coefs: tuple
    intercepts: tuple


@jit(helper=True)
def _all_finite(a):
    """Whether every entry of the flat ``a`` is finite (one pass, no early exit)."""
    bad = a.dtype.type(0.0)
    for i in range(a.shape[0]):
        bad += a[i] * a.dtype.type(0.0)  # NaN for NaN and +-inf, else 0
    return bad == bad


@jit
def output_rows(code, Z):
    """The output layer's activation of the pre-activations ``Z`` (n, m), in place, row
    by row as the reference's ``output_activation``: softmax (max-shifted), logistic,
    identity (unchanged) or exp; ``code`` from :data:`nnopt_fast.kernels.codes.OUTPUTS`."""
    n, m = Z.shape
    one = Z.dtype.type(1.0)
    if code == SOFTMAX:
        for i in range(n):
            zmax = Z[i, 0]
            for j in range(1, m):
                if Z[i, j] > zmax:
                    zmax = Z[i, j]
            s = Z.dtype.type(0.0)
            for j in range(m):
                e = math.exp(Z[i, j] - zmax)
                Z[i, j] = e
                s += e
            for j in range(m):
                Z[i, j] = Z[i, j] / s
    elif code == LOGISTIC_OUT:
        z = as_flat(Z)
        for t in range(z.shape[0]):
            z[t] = one / (one + math.exp(-z[t]))
    elif code == EXP_OUT:
        z = as_flat(Z)
        for t in range(z.shape[0]):
            z[t] = math.exp(z[t])


@jit
def forward_blocks(net, act, output, X, out, work):
    """``out`` = the network ``net`` (:class:`Layers`) on the rows of ``X``, block by
    block of :data:`BLOCK_ROWS` rows with the GIL released: per layer one ``np.dot`` and
    the bias and activation ``act`` (identity at the output), then the output activation
    ``output`` (a code of :data:`nnopt_fast.kernels.codes.OUTPUTS`; -1 for none: ``out``
    is then ``Z``). ``work`` holds two blocks of the widest hidden layer.

    Returns ``OK``, or ``NONFINITE`` if X holds NaN or infinity (every row is still
    computed). X, out and work are C-contiguous, of the weights' dtype.
    """
    net, X, out, work = borrow((net, X, out, work))
    L = len(net.coefs)
    n, n_in = X.shape
    x, o = as_flat(X), as_flat(out)
    half = work.shape[0] // 2
    status = OK
    for r0 in range(0, n, BLOCK_ROWS):
        nb = min(BLOCK_ROWS, n - r0)
        A = as_matrix(x[r0 * n_in:(r0 + nb) * n_in], nb, n_in)
        if status == OK and not _all_finite(as_flat(A)):
            status = NONFINITE
        for l in range(L):
            W = net.coefs[l]
            m = W.shape[1]
            if l == L - 1:
                Z = as_matrix(o[r0 * m:(r0 + nb) * m], nb, m)
            else:
                Z = as_matrix(work[(l % 2) * half:(l % 2) * half + nb * m], nb, m)
            np.dot(A, W, Z)
            bias_act(Z, net.intercepts[l], IDENTITY if l == L - 1 else act)
            A = Z
        if output >= 0:
            output_rows(output, A)
    return status


class NumbaNetwork:
    """The Numba backend's compiled forward pass of one network (``compile_network``):
    ``run(X, out, apply_output) -> status``, as the C backend's.

    The weights are referenced, not copied (later in-place changes are seen); each call
    allocates its own workspace of two blocks of the widest hidden layer, so concurrent
    calls from several threads never share one.
    """

    def __init__(self, coefs, intercepts, activation, output):
        self._layers = Layers(tuple(_readonly(W) for W in coefs),
                              tuple(_readonly(b) for b in intercepts))
        self._act, self._output = int(activation), int(output)
        widest = max([W.shape[1] for W in coefs[:-1]], default=1)
        self._work_size = 2 * BLOCK_ROWS * widest
        self._dtype = coefs[0].dtype

    def run(self, X, out, apply_output, n_threads=1):
        """Write the output activations (``apply_output``) or pre-activations of rows
        ``X`` into ``out``; returns the status code (``nonfinite`` for NaN or inf in X).
        ``n_threads`` is accepted for the C backend's signature: this pass runs on the
        calling thread."""
        work = np.empty(self._work_size, dtype=self._dtype)
        return forward_blocks(self._layers, self._act, self._output if apply_output else -1,
                              _readonly(X), out, work)

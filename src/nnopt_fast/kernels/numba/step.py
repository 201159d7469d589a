"""The Numba training step: workspace views, forward and backward of a batch's rows, the step."""

from typing import NamedTuple

import numpy as np

from .._numba_config import jit
from .borrow import as_matrix, prefetch
from .rows import backward_act, bias_act, bias_act_dropout, dense_backward, loss_rows
from .scalar import IDENTITY, NONFINITE, OK, ZERO_WEIGHT, step_key
from .sparse import csr_backward, csr_forward, is_csr
from .updates import penalty_value, step_coeffs, update_chunk

__all__ = ["Epoch", "Rows", "weights", "bias", "block_A", "block_H", "block_M", "block_D",
           "has_dropout", "batch_rows", "batch_weight", "prefetch_rows", "gradient_rows",
           "batch_step", "PREFETCH_MAX_BYTES"]

#: Batches whose rows of X span more bytes are not prefetched (as in the C step,
#: ``NN_PREFETCH_MAX_BYTES``): a full queue drops prefetches and they would evict what
#: the step itself uses.
PREFETCH_MAX_BYTES = 1 << 18


class Epoch(NamedTuple):
    """The epoch's sample order, learning rate and counters, and the stop flag it polls."""

    perm: np.ndarray
    lr: float
    #: Global step of the first batch (keys the dropout masks).
    step0: int
    #: Optimizer updates done before this epoch (Adam's t).
    t0: int
    #: int32[2]: end after this batch; abort now.
    stop: np.ndarray


class Rows(NamedTuple):
    """The rows of one forward and backward pass: samples ``idx`` of the training data
    are rows ``row0 ..`` of the batch (rows of the workspace blocks and of the dropout
    masks) at global step ``step``."""

    idx: np.ndarray
    row0: int
    step: int


# ---------------------------------------------------------------------------
# views into the flat parameters and the flat workspace (the plan's layout)
# ---------------------------------------------------------------------------
@jit(helper=True, inline=True)
def _matrix(buf, offset, n_rows, n_cols):
    """The (n_rows, n_cols) row-major matrix at ``offset`` of the flat ``buf``."""
    return as_matrix(buf[offset:offset + n_rows * n_cols], n_rows, n_cols)


@jit(helper=True, inline=True)
def weights(plan, P, l):
    """``W_l`` (sizes[l-1], sizes[l]) of layer l >= 1, a view into the flat ``P``."""
    return _matrix(P, plan.param_offsets[l - 1, 0], plan.sizes[l - 1], plan.sizes[l])


@jit(helper=True, inline=True)
def bias(plan, P, l):
    """``b_l`` (sizes[l],) of layer l >= 1, a view into the flat ``P``."""
    o = plan.param_offsets[l - 1, 1]
    return P[o:o + plan.sizes[l]]


@jit(helper=True, inline=True)
def block_A(plan, work, l, r0, r1):
    """Rows ``r0:r1`` of ``A_l`` in the workspace: the gathered batch (l = 0), or layer
    l's activations after dropout (they are ``H_l`` without dropout)."""
    n = plan.sizes[l]
    return _matrix(work, plan.work_offsets[l, 0] + r0 * n, r1 - r0, n)


@jit(helper=True, inline=True)
def block_H(plan, work, l, r0, r1):
    """Rows ``r0:r1`` of ``H_l``: layer l's activations before dropout (``Z`` at the
    output layer, which its loss gradient overwrites)."""
    n = plan.sizes[l]
    return _matrix(work, plan.work_offsets[l, 1] + r0 * n, r1 - r0, n)


@jit(helper=True, inline=True)
def block_M(plan, work, l, r0, r1):
    """Rows ``r0:r1`` of ``M_l``: layer l's dropout mask (only with dropout)."""
    n = plan.sizes[l]
    return _matrix(work, plan.work_offsets[l, 2] + r0 * n, r1 - r0, n)


@jit(helper=True, inline=True)
def block_D(plan, work, l, r0, r1):
    """Rows ``r0:r1`` of ``D_l``: the delta of layer l, d loss / d Z_l, unscaled and
    sample-weighted."""
    n = plan.sizes[l]
    return _matrix(work, plan.work_offsets[l, 3] + r0 * n, r1 - r0, n)


@jit(helper=True, inline=True)
def has_dropout(plan, l):
    """Whether layer l drops units (it then has a mask block)."""
    return plan.work_offsets[l, 2] >= 0


# ---------------------------------------------------------------------------
# one batch
# ---------------------------------------------------------------------------
@jit(helper=True)
def _gather(X, idx, out):
    """``out = X[idx]``, row by row (indexed in place: a view per row would cost two
    reference counts a row)."""
    n_in = X.shape[1]
    for i in range(idx.shape[0]):
        r = idx[i]
        for j in range(n_in):
            out[i, j] = X[r, j]


@jit(helper=True, inline=True)
def _product(data, sparse, idx, A, W, out):
    """``out = A W``; on a sparse X's input layer (``sparse``), ``out = X[idx] W`` on
    the CSR rows' non-zeros (``A`` is then not gathered)."""
    if sparse:
        csr_forward(data.csr, idx, W, out)
    else:
        np.dot(A, W, out)


@jit(helper=True, inline=True)
def batch_rows(plan, epoch, k):
    """The sample indices of batch ``k`` of the epoch: ``perm[k B : (k + 1) B]``."""
    n = epoch.perm.shape[0]
    start = k * plan.batch_size
    return epoch.perm[start:min(start + plan.batch_size, n)]


@jit(helper=True)
def batch_weight(data, idx):
    """``S = sum(sw[idx])`` in float64, in order; the batch's row count without weights."""
    sw = data.sw
    if sw.shape[0] == 0:
        return np.float64(idx.shape[0])
    s = 0.0
    for i in range(idx.shape[0]):
        s += np.float64(sw[idx[i]])
    return s


@jit(helper=True)
def _prefetch_lines(a, idx, row_len):
    """Prefetch rows ``idx`` of ``a``, C-contiguous rows of ``row_len`` entries: each of
    their cache lines, and the last entry (a row need not start on a line)."""
    per_line = max(1, 64 // a.itemsize)
    for i in range(idx.shape[0]):
        base = idx[i] * row_len
        for off in range(0, row_len, per_line):
            prefetch(a, base + off)
        prefetch(a, base + row_len - 1)


@jit(helper=True, inline=True)
def prefetch_rows(plan, data, idx):
    """Start loading samples ``idx`` of a coming batch (shuffled rows miss the caches):
    their labels or targets and weights first (few lines), then their rows of a dense X,
    unless those span more than :data:`PREFETCH_MAX_BYTES`."""
    if data.y.shape[0] != 0:
        _prefetch_lines(data.y, idx, 1)
    if data.Y.shape[0] != 0:
        _prefetch_lines(data.Y, idx, data.Y.shape[1])
    if data.sw.shape[0] != 0:
        _prefetch_lines(data.sw, idx, 1)
    X = data.X
    if X.shape[0] != 0 and idx.shape[0] * X.shape[1] * X.itemsize <= PREFETCH_MAX_BYTES:
        _prefetch_lines(X, idx, X.shape[1])


@jit
def gradient_rows(plan, P, G, data, work, rows, scale):
    """Forward and backward of ``rows`` (:class:`Rows`); writes ``scale * dW`` and
    ``scale * db`` of those rows into ``G`` (laid out like ``P``).

    The reference's steps 1, 2 and 4: ``H_l = g(A_{l-1} W_l + b_l)``, ``A_l = H_l M_l``
    with dropout; the loss gradient at the output; ``dW_l = scale A_{l-1}^T D_l``,
    ``db_l = scale sum(D_l)``, ``D_{l-1} = (D_l W_l^T) g'(H_{l-1}) M_{l-1}``; on a sparse
    X (``data``'s :class:`.sparse.Csr`) the input layer's two products run on the rows'
    non-zeros. Everything lives in rows ``row0 ..`` of the workspace blocks, so disjoint
    rows of one batch can run concurrently. Returns the weighted data-loss sum of the rows
    in float64; if it is not finite, returns it before the backward pass (``G`` is then
    not written).
    """
    L = plan.n_layers
    act = plan.activation
    idx = rows.idx
    r0 = rows.row0
    r1 = r0 + idx.shape[0]
    sparse = is_csr(data)
    A = block_A(plan, work, 0, r0, r1)
    if not sparse:
        _gather(data.X, idx, A)
    for l in range(1, L):
        H = block_H(plan, work, l, r0, r1)
        _product(data, sparse and l == 1, idx, A, weights(plan, P, l), H)
        if has_dropout(plan, l):
            A = block_A(plan, work, l, r0, r1)
            bias_act_dropout(H, bias(plan, P, l), act, A, block_M(plan, work, l, r0, r1),
                             step_key(plan.layer_keys[l], rows.step), plan.drop_threshold[l],
                             H.dtype.type(plan.keep_inv[l]), r0)
        else:
            bias_act(H, bias(plan, P, l), act)
            A = H
    Z = block_D(plan, work, L, r0, r1)
    _product(data, sparse and L == 1, idx, A, weights(plan, P, L), Z)
    bias_act(Z, bias(plan, P, L), IDENTITY)
    lsum = loss_rows(plan.output, Z, data, idx, Z.dtype.type(plan.clip_eps), Z)
    if not np.isfinite(lsum):
        return lsum
    s = Z.dtype.type(scale)
    for l in range(L, 0, -1):
        # The input layer has no delta: its dA is an empty stand-in of the same type.
        want_dA = l > 1
        dA = block_D(plan, work, l - 1, r0, r1) if want_dA else work[:0].reshape(0, 0)
        if sparse and l == 1:
            csr_backward(data.csr, idx, block_D(plan, work, 1, r0, r1), s,
                         weights(plan, G, 1), bias(plan, G, 1))
        else:
            dense_backward(block_D(plan, work, l, r0, r1),
                           block_A(plan, work, l - 1, r0, r1), weights(plan, P, l), s,
                           weights(plan, G, l), bias(plan, G, l), dA, want_dA)
        if want_dA:
            H = block_H(plan, work, l - 1, r0, r1)
            with_mask = has_dropout(plan, l - 1)
            M = block_M(plan, work, l - 1, r0, r1) if with_mask else H
            backward_act(dA, H, act, M, with_mask, dA)
    return lsum


@jit(helper=True, inline=True)
def batch_step(plan, state, data, work, epoch, k):
    """The training step of batch ``k`` of the epoch (:class:`Epoch`): forward, backward
    and the update of every parameter (:class:`TrainArrays` ``state``), at global step
    ``epoch.step0 + k`` and update number ``epoch.t0 + k + 1``.

    Returns ``(status, data_loss, penalty_loss)``: the batch's ``n_batch * (loss sum /
    S)`` and ``n_batch * penalty(before the step)``; status ``zero_weight`` if the batch's
    weights sum to 0, ``nonfinite`` if its loss is not finite (nothing updated then).
    """
    idx = batch_rows(plan, epoch, k)
    S = batch_weight(data, idx)
    if S == 0.0:
        return ZERO_WEIGHT, 0.0, 0.0
    coeffs = step_coeffs(plan, S, epoch.lr, epoch.t0 + k + 1)
    lsum = gradient_rows(plan, state.params, state.grads, data, work,
                         Rows(idx, 0, epoch.step0 + k), coeffs.scale)
    if not np.isfinite(lsum):
        return NONFINITE, 0.0, 0.0
    nb = idx.shape[0]
    s2, s1 = update_chunk(plan, state, work[:0].reshape(0, 0), nb, 0, 1, coeffs)
    penalty = 0.0
    if plan.l2 != 0.0 or plan.l1 != 0.0:
        penalty = nb * penalty_value(plan, s2, s1, coeffs.d)
    return OK, nb * (lsum / S), penalty

"""Row and elementwise kernels of the Numba backend, on preallocated C-contiguous arrays."""

import math

import numpy as np

from .._numba_config import jit
from .borrow import as_flat
from .scalar import (EXP_OUT, IDENTITY, LOGISTIC, LOGISTIC_OUT, RELU, SOFTMAX, TANH, activate,
                     derivative, dropout_bits, fast_exp, sign, soft_threshold)

__all__ = ["bias_act", "bias_act_dropout", "fill_mask", "backward_act", "loss_rows",
           "dense_forward", "network_forward", "dense_backward", "column_sums", "penalized_grad",
           "l2_decay", "soft_threshold_all", "penalty_sums"]


#: Layers narrower than this run the bias and the activation as two passes, the second
#: one flat over the whole block: a row loop of a few units never fills a vector (tanh
#: at width 8 took 2.6 ns an element as one row loop, against 0.4 ns flat).
FLAT_BELOW = 16


@jit(helper=True)
def _act_flat(z, act):
    """``z <- g(z)`` over a flat array; one loop per activation so that each vectorizes."""
    # A constant code per loop lets LLVM fold activate's dispatch away.
    if act == TANH:
        for t in range(z.shape[0]):
            z[t] = activate(z[t], TANH)
    elif act == RELU:
        for t in range(z.shape[0]):
            z[t] = activate(z[t], RELU)
    elif act == LOGISTIC:
        for t in range(z.shape[0]):
            z[t] = activate(z[t], LOGISTIC)


@jit(helper=True)
def _bias_act_rows(Z, b, act):
    """``Z <- g(Z + b)`` row by row, bias and activation in one loop per activation."""
    n, m = Z.shape
    for i in range(n):
        if act == TANH:
            for j in range(m):
                Z[i, j] = activate(Z[i, j] + b[j], TANH)
        elif act == RELU:
            for j in range(m):
                Z[i, j] = activate(Z[i, j] + b[j], RELU)
        elif act == LOGISTIC:
            for j in range(m):
                Z[i, j] = activate(Z[i, j] + b[j], LOGISTIC)
        else:
            for j in range(m):
                Z[i, j] = Z[i, j] + b[j]


@jit
def bias_act(Z, b, act):
    """``Z <- g(Z + b)`` in place: the bias and activation of a dense layer.

    Rows of :data:`FLAT_BELOW` units or more run one fused loop each; narrower blocks
    get the bias row by row, then the activation in one flat loop over the block (the
    same values: ``g`` of the rounded ``Z + b``).

    Parameters
    ----------
    Z : (n, m) C-contiguous array, written
    b : (m,) array
    act : int
        Activation code (:data:`nnopt_fast.kernels.codes.ACTIVATIONS`).
    """
    n, m = Z.shape
    if m >= FLAT_BELOW or act == IDENTITY:
        _bias_act_rows(Z, b, IDENTITY if act == IDENTITY else act)
        return
    _bias_act_rows(Z, b, IDENTITY)
    _act_flat(as_flat(Z), act)


@jit(helper=True)
def _dropout_flat(h, a, mk, key, thr, keep_inv, base):
    """``mk[t]`` = the mask of counter ``base + t``, ``a[t] = h[t] mk[t]``, flat."""
    zero = h.dtype.type(0.0)
    b = np.uint64(base)
    for t in range(h.shape[0]):
        keep = keep_inv if dropout_bits(key, b + np.uint64(t)) < thr else zero
        mk[t] = keep
        a[t] = h[t] * keep


@jit
def bias_act_dropout(H, b, act, A, M, key, thr, keep_inv, row0):
    """``H <- g(H + b)``, ``M`` = the inverted-dropout mask, ``A = H * M``.

    Row i of the arrays is row ``row0 + i`` of the batch, whose unit j has the counter
    ``(row0 + i) m + j + 1`` of :func:`dropout_bits`: ``M[i, j] = keep_inv`` if its bits
    are below ``thr``, else 0. The counters of a C-contiguous block run on with its
    flat index, so the mask is one flat loop whatever the width.

    Parameters
    ----------
    H, A, M : (n, m) C-contiguous arrays, written
    b : (m,) array
    act : int
    key, thr : uint64
        The layer's key at this step (:func:`step_key`) and threshold.
    keep_inv : float of H's dtype
        ``1 / keep``.
    row0 : int
    """
    n, m = H.shape
    bias_act(H, b, act)
    _dropout_flat(as_flat(H), as_flat(A), as_flat(M), key, thr, keep_inv,
                  row0 * m + 1)


@jit
def fill_mask(key, thr, keep_inv, row0, out):
    """The dropout mask alone: ``out[i, j]`` as ``M`` of :func:`bias_act_dropout`."""
    n, m = out.shape
    zero = out.dtype.type(0.0)
    o = as_flat(out)
    base = np.uint64(row0 * m + 1)
    for t in range(n * m):
        o[t] = keep_inv if dropout_bits(key, base + np.uint64(t)) < thr else zero


@jit
def backward_act(dA, H, act, M, use_mask, out):
    """``out = dA * g'(H) [* M]``, flat over the C-contiguous blocks; ``out`` may be
    ``dA``.

    One loop per activation code (constant, so LLVM folds the dispatch), the mask in a
    second flat loop.
    """
    n, m = dA.shape
    d, h, o = as_flat(dA), as_flat(H), as_flat(out)
    if act == TANH:
        for t in range(n * m):
            o[t] = d[t] * derivative(h[t], TANH)
    elif act == RELU:
        for t in range(n * m):
            o[t] = d[t] * derivative(h[t], RELU)
    elif act == LOGISTIC:
        for t in range(n * m):
            o[t] = d[t] * derivative(h[t], LOGISTIC)
    else:
        for t in range(n * m):
            o[t] = d[t]
    if use_mask:
        mk = as_flat(M)
        for t in range(n * m):
            o[t] = o[t] * mk[t]


@jit
def loss_rows(code, Z, data, idx, eps, out):
    """Loss gradient of the output layer, in place on ``out`` (may be ``Z``).

    Row ``i`` of ``Z`` is sample ``idx[i]`` of the training data ``data`` (an
    :class:`nnopt_fast.kernels.epoch.EpochData` whose ``sw`` is empty without sample
    weights): its labels ``y`` (softmax) or targets ``Y``, its weight ``sw``.
    Probabilities are clipped to ``[eps, 1 - eps]`` in the logs. Returns the weighted
    loss sum in float64 (the reference's three loss kernels):

    - softmax: ``out = P - onehot(y)``, loss ``-log p_y``;
    - logistic: ``out = p - Y``, loss ``-(Y log p + (1 - Y) log(1 - p))`` summed;
    - identity: ``out = Z - Y``, loss ``||Z - Y||^2 / 2``;
    - exp: ``out = exp(Z) - Y``, loss ``sum (Y log Y - Y Z - Y + exp(Z))`` (half the
      Poisson deviance; ``Y log Y = 0`` at ``Y = 0``);

    each row of ``out`` and its loss then times its sample weight.
    """
    if code == SOFTMAX:
        return _softmax_rows(Z, data, idx, eps, out)
    y, Y, sw = data.y, data.Y, data.sw
    has_sw = sw.shape[0] != 0
    n, m = Z.shape
    t = Z.dtype.type
    one = t(1.0)
    hi = one - eps
    total = 0.0
    for i in range(n):
        r = idx[i]
        L = 0.0
        if code == LOGISTIC_OUT:
            for j in range(m):
                p = one / (one + math.exp(-Z[i, j]))
                pc = np.float64(eps if p < eps else (hi if p > hi else p))
                yv = np.float64(Y[r, j])
                L -= yv * math.log(pc) + (1.0 - yv) * math.log1p(-pc)
                out[i, j] = p - Y[r, j]
        elif code == EXP_OUT:
            for j in range(m):
                z = Z[i, j]
                p = math.exp(z)
                yv = np.float64(Y[r, j])
                ylogy = yv * math.log(yv) if yv > 0.0 else 0.0
                L += ylogy - yv * np.float64(z) - yv + np.float64(p)
                out[i, j] = p - Y[r, j]
        else:
            for j in range(m):
                g = Z[i, j] - Y[r, j]
                g64 = np.float64(g)
                L += g64 * g64
                out[i, j] = g
            L = 0.5 * L
        if has_sw:
            L = _weigh_row(out, i, sw[r], L)
        total += L
    return total


@jit(helper=True)
def _weigh_row(out, i, w, L):
    """Row ``i`` of the loss gradient ``out`` times the sample weight ``w``; returns
    ``L w``, the row's weighted loss."""
    for j in range(out.shape[1]):
        out[i, j] = out[i, j] * w
    return L * np.float64(w)


@jit(helper=True)
def _softmax_rows(Z, data, idx, eps, out):
    """The softmax cross-entropy of :func:`loss_rows`: ``out = P - onehot(y)``, loss
    ``-log p_y`` (``p_y`` clipped to ``[eps, 1 - eps]``), each row times its weight.

    Three passes, so that the exps vectorize whatever the number of classes: the rows
    less their maximum, the exps flat over the block (:func:`fast_exp`), then per row
    the normalization, the gradient and libm's log (every pass reads a value before
    writing it, so ``out`` may be ``Z``). The log stays libm's: one per row, latency
    bound, a polynomial took twice its 10-15 ns there."""
    y, sw = data.y, data.sw
    has_sw = sw.shape[0] != 0
    n, m = Z.shape
    t = Z.dtype.type
    hi = t(1.0) - eps
    for i in range(n):
        zmax = Z[i, 0]
        for j in range(1, m):
            if Z[i, j] > zmax:
                zmax = Z[i, j]
        for j in range(m):
            out[i, j] = Z[i, j] - zmax
    flat = as_flat(out)
    for k in range(n * m):
        flat[k] = fast_exp(flat[k])
    total = 0.0
    for i in range(n):
        s = t(0.0)
        for j in range(m):
            s += out[i, j]
        for j in range(m):
            out[i, j] = out[i, j] / s
        c = y[idx[i]]
        p = out[i, c]
        p = eps if p < eps else (hi if p > hi else p)
        L = -math.log(np.float64(p))
        out[i, c] = out[i, c] - t(1.0)
        if has_sw:
            L = _weigh_row(out, i, sw[idx[i]], L)
        total += L
    return total


@jit
def dense_forward(A, W, b, act, out):
    """``out = g(A W + b)``: one GEMM, then the bias and activation in one pass."""
    np.dot(A, W, out)
    bias_act(out, b, act)


@jit
def network_forward(coefs, intercepts, act, X, out):
    """``out = Z``, the output pre-activations of the network on ``X``:
    ``A_l = g(A_{l-1} W_l + b_l)`` for the hidden layers, ``Z = A_{L-1} W_L + b_L``.

    ``coefs`` and ``intercepts`` are tuples of ``W_l`` (n_{l-1}, n_l) and ``b_l`` (n_l,);
    the hidden activations are allocated here, the output written in place.
    """
    L = len(coefs)
    if L == 1:
        dense_forward(X, coefs[0], intercepts[0], IDENTITY, out)
        return
    A = np.empty((X.shape[0], coefs[0].shape[1]), dtype=out.dtype)
    dense_forward(X, coefs[0], intercepts[0], act, A)
    for l in range(1, L - 1):
        H = np.empty((X.shape[0], coefs[l].shape[1]), dtype=out.dtype)
        dense_forward(A, coefs[l], intercepts[l], act, H)
        A = H
    dense_forward(A, coefs[L - 1], intercepts[L - 1], IDENTITY, out)


@jit(helper=True)
def column_sums(dZ, s, db):
    """``db = dZ.sum(axis=0) * s``, rows added in order (as NumPy does for axis 0)."""
    n, m = dZ.shape
    for j in range(m):
        db[j] = dZ.dtype.type(0.0)
    for i in range(n):
        for j in range(m):
            db[j] += dZ[i, j]
    for j in range(m):
        db[j] = db[j] * s


@jit
def dense_backward(dZ, A, W, s, dW, db, dA, want_dA):
    """``dW = (A^T dZ) s``, ``db = s sum(dZ)`` and, with ``want_dA``, ``dA = dZ W^T``."""
    np.dot(A.T, dZ, dW)
    n_in, n_out = dW.shape
    for i in range(n_in):
        for j in range(n_out):
            dW[i, j] = dW[i, j] * s
    column_sums(dZ, s, db)
    if want_dA:
        np.dot(dZ, W.T, dA)


@jit
def penalized_grad(G, P, c2, c1, with_l2, with_l1):
    """``G <- G + c2 P`` (``with_l2``) ``+ c1 sign(P)`` (``with_l1``), flat, in place."""
    for i in range(G.shape[0]):
        g = G[i]
        if with_l2:
            g = g + c2 * P[i]
        if with_l1:
            g = g + c1 * sign(P[i])
        G[i] = g


@jit
def l2_decay(W, dW, lr, c):
    """The fused weight-decay step ``W <- W - lr (dW + c W)``, flat, in place."""
    for i in range(W.shape[0]):
        w = W[i]
        W[i] = w - lr * (dW[i] + c * w)


@jit
def soft_threshold_all(W, thr):
    """The proximal L1 step ``W <- sign(W) max(|W| - thr, 0)``, flat, in place."""
    for i in range(W.shape[0]):
        W[i] = soft_threshold(W[i], thr)


@jit
def penalty_sums(W):
    """``(sum W^2, sum |W|)`` of a flat array, accumulated in float64."""
    s2 = 0.0
    s1 = 0.0
    for i in range(W.shape[0]):
        w = np.float64(W[i])
        s2 += w * w
        s1 += abs(w)
    return s2, s1

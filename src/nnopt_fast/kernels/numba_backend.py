"""Numba backend: the reference kernels as ``@njit`` functions and one compiled epoch loop."""

import math

import numba
import numpy as np
from numba import types
from numba.extending import overload

from . import hashing as ref
from ._numba_config import FASTMATH, cache_info, jit
from .codes import ACTIVATIONS, OPTIMIZERS, OUTPUTS
from .dispatch import check_same_dtype
from .hashing import dropout_threshold
from .reference import KERNELS

__all__ = ["BACKEND_NAME", "backend_info", "fast_tanh", *KERNELS]

#: Name of this backend in the registry.
BACKEND_NAME = "numba"

# Integer codes shared with the reference (and the Cython backend).
_IDENTITY, _TANH, _RELU, _LOGISTIC = (ACTIVATIONS[k]
                                      for k in ("identity", "tanh", "relu", "logistic"))
_SOFTMAX, _LOGISTIC_OUT, _SQUARED = (OUTPUTS[k] for k in ("softmax", "logistic", "identity"))
_SGD, _MOMENTUM, _NESTEROV, _ADAM = (OPTIMIZERS[k]
                                     for k in ("sgd", "momentum", "nesterov", "adam"))

# splitmix64 constants as uint64 scalars: Numba turns an int64/uint64 mix into float64,
# so every operand of the hash must already be uint64.
_GOLDEN = np.uint64(ref.GOLDEN)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SH30 = np.uint64(30)
_SH27 = np.uint64(27)
_SH31 = np.uint64(31)
_DROP_SHIFT = np.uint64(64 - ref.DROPOUT_BITS)

# tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 9, fitted by Lawson-weighted least squares to
# minimize the maximum absolute error (1.9e-8 in exact arithmetic; evaluated in float32
# the max abs error vs np.tanh is 3.6e-7, measured on every 7th float32 of [0, 12]).
# Beyond 9, tanh rounds to +-1 in float32.
_TP0 = 9.9999990639780767e-01
_TP1 = 1.3373226369836361e-01
_TP2 = 3.4866158303648127e-03
_TP3 = 2.0472384683325860e-05
_TP4 = 1.3184984277485585e-08
_TQ1 = 4.6706523247818166e-01
_TQ2 = 2.5842108599356949e-02
_TQ3 = 3.2714406971731728e-04
_TQ4 = 7.7029762529044857e-07
_TANH_CLAMP = 9.0


# ---------------------------------------------------------------------------
# scalar helpers, compiled into the loops that call them
# ---------------------------------------------------------------------------
def fast_tanh(x):
    """tanh for the kernels: a rational approximation in float32, libm's tanh in float64.

    Without Intel SVML, ``np.tanh`` in Numba is a scalar libm call that blocks
    vectorization; the float32 rational form vectorizes. Max abs error vs ``np.tanh``:
    < 1e-6 in float32 (measured 3.6e-7), libm in float64. NaN propagates.
    Callable from Python (scalar) and from ``@njit`` code.
    """
    if isinstance(x, np.float32):
        return _tanh32_py(x)
    return math.tanh(x)


def _tanh32_py(x):
    return np.float32(_tanh32(np.float32(x)))


@jit(helper=True)
def _tanh32(x):
    f = np.float32
    # Clamp with comparisons that let NaN through, so a diverging batch stays NaN.
    a = x
    if x > f(_TANH_CLAMP):
        a = f(_TANH_CLAMP)
    elif x < f(-_TANH_CLAMP):
        a = f(-_TANH_CLAMP)
    u = a * a
    p = (((f(_TP4) * u + f(_TP3)) * u + f(_TP2)) * u + f(_TP1)) * u + f(_TP0)
    q = (((f(_TQ4) * u + f(_TQ3)) * u + f(_TQ2)) * u + f(_TQ1)) * u + f(1.0)
    r = a * p / q
    # The fit overshoots 1 by ~1e-8 near the clamp: keep |tanh| <= 1 so 1 - H^2 >= 0.
    if r > f(1.0):
        r = f(1.0)
    elif r < f(-1.0):
        r = f(-1.0)
    return r


@overload(fast_tanh, jit_options={"fastmath": set(FASTMATH)})
def _fast_tanh_ol(x):
    if x == types.float32:
        return lambda x: _tanh32(x)
    return lambda x: math.tanh(x)


@jit(helper=True)
def _activate(z, act):
    """``g(z)`` for activation code ``act``, in the dtype of ``z``."""
    t = type(z)
    if act == _TANH:
        return fast_tanh(z)
    if act == _RELU:
        # ``z < 0`` is False for NaN, which then propagates as np.maximum does.
        return t(0.0) if z < t(0.0) else z
    if act == _LOGISTIC:
        return t(1.0) / (t(1.0) + math.exp(-z))
    return z


@jit(helper=True)
def _derivative(h, act):
    """``g'`` from the activation's output ``h = g(z)``, in the dtype of ``h``."""
    t = type(h)
    if act == _TANH:
        return t(1.0) - h * h
    if act == _RELU:
        return t(1.0) if h > t(0.0) else t(0.0)
    if act == _LOGISTIC:
        return h * (t(1.0) - h)
    return t(1.0)


@jit(helper=True)
def _sign(w):
    t = type(w)
    if w > t(0.0):
        return t(1.0)
    if w < t(0.0):
        return t(-1.0)
    return w * t(0.0)  # 0 for 0, NaN for NaN (as np.sign)


@jit(helper=True)
def _mix64(z):
    z = (z ^ (z >> _SH30)) * _MIX1
    z = (z ^ (z >> _SH27)) * _MIX2
    return z ^ (z >> _SH31)


@jit(helper=True)
def _step_key(layer_key, step):
    """Key of one layer at one step from ``layer_key = mix(mix(seed) + (layer+1) G)``."""
    return _mix64(layer_key + np.uint64(step + 1) * _GOLDEN)


def _layer_key(seed, layer):
    """``mix(mix(seed) + (layer+1) G)`` as a uint64 (Python ints wrap exactly mod 2**64)."""
    k = ref.mix64_int(seed)
    return np.uint64(ref.mix64_int(k + (layer + 1) * ref.GOLDEN))


# ---------------------------------------------------------------------------
# elementwise and row kernels on preallocated arrays
# ---------------------------------------------------------------------------
@jit(helper=True)
def _bias_act_row(z, b, act, h):
    """``h = g(z + b)`` over one row; one loop per activation so each vectorizes."""
    n = z.shape[0]
    # A constant code per loop lets LLVM fold _activate's dispatch away.
    if act == _TANH:
        for j in range(n):
            h[j] = _activate(z[j] + b[j], _TANH)
    elif act == _RELU:
        for j in range(n):
            h[j] = _activate(z[j] + b[j], _RELU)
    elif act == _LOGISTIC:
        for j in range(n):
            h[j] = _activate(z[j] + b[j], _LOGISTIC)
    else:
        for j in range(n):
            h[j] = z[j] + b[j]


@jit
def _bias_act_dropout(Z, b, act, H, A, M, drop, key, thr, scale, row0):
    """``H = g(Z + b)``; with ``drop``, ``M`` = the dropout mask of rows ``row0..`` and
    ``A = H * M``. Fused row by row (the row stays in L1 between the two inner loops,
    which are kept apart so that each vectorizes); ``H`` may be ``Z``."""
    n, m = Z.shape
    zero = Z.dtype.type(0.0)
    for i in range(n):
        _bias_act_row(Z[i], b, act, H[i])
        if drop:
            base = np.uint64((row0 + i) * m + 1)
            for j in range(m):
                bits = _mix64((base + np.uint64(j)) * _GOLDEN + key) >> _DROP_SHIFT
                mk = scale if bits < thr else zero
                M[i, j] = mk
                A[i, j] = H[i, j] * mk


@jit
def _backward_act(dA, H, act, M, use_mask, out):
    """``out = dA * g'(H) [* M]``, row by row; ``out`` may be ``dA``.

    As in the forward pass, one inner loop per activation code (constant, so LLVM folds
    the dispatch) and the mask in a second loop over the L1-resident row.
    """
    n, m = dA.shape
    for i in range(n):
        d, h, o = dA[i], H[i], out[i]
        if act == _TANH:
            for j in range(m):
                o[j] = d[j] * _derivative(h[j], _TANH)
        elif act == _RELU:
            for j in range(m):
                o[j] = d[j] * _derivative(h[j], _RELU)
        elif act == _LOGISTIC:
            for j in range(m):
                o[j] = d[j] * _derivative(h[j], _LOGISTIC)
        else:
            for j in range(m):
                o[j] = d[j]
        if use_mask:
            mk = M[i]
            for j in range(m):
                o[j] = o[j] * mk[j]


@jit
def _fill_mask(key, thr, scale, row0, out):
    n, m = out.shape
    zero = out.dtype.type(0.0)
    for i in range(n):
        base = np.uint64((row0 + i) * m + 1)
        for j in range(m):
            bits = _mix64((base + np.uint64(j)) * _GOLDEN + key) >> _DROP_SHIFT
            out[i, j] = scale if bits < thr else zero


@jit
def _loss_rows(code, Z, y, Y, sw, has_sw, rows, base, eps, out):
    """Loss gradient of the output layer, in place on ``out`` (may be ``Z``).

    Batch row ``i`` is sample ``rows[base + i]`` of the targets ``y`` (int64 labels,
    softmax) or ``Y`` (dtype, other outputs) and of the weights ``sw``. Returns the
    weighted loss sum in float64 (see the reference's three loss kernels).
    """
    n, m = Z.shape
    t = Z.dtype.type
    one = t(1.0)
    hi = one - eps
    total = 0.0
    for i in range(n):
        r = rows[base + i]
        L = 0.0
        if code == _SOFTMAX:
            zmax = Z[i, 0]
            for j in range(1, m):
                if Z[i, j] > zmax:
                    zmax = Z[i, j]
            s = t(0.0)
            for j in range(m):
                e = math.exp(Z[i, j] - zmax)
                out[i, j] = e
                s += e
            for j in range(m):
                out[i, j] = out[i, j] / s
            c = y[r]
            p = out[i, c]
            p = eps if p < eps else (hi if p > hi else p)
            L = -math.log(np.float64(p))
            out[i, c] = out[i, c] - one
        elif code == _LOGISTIC_OUT:
            for j in range(m):
                p = one / (one + math.exp(-Z[i, j]))
                pc = np.float64(eps if p < eps else (hi if p > hi else p))
                yv = np.float64(Y[r, j])
                L -= yv * math.log(pc) + (1.0 - yv) * math.log1p(-pc)
                out[i, j] = p - Y[r, j]
        else:
            for j in range(m):
                g = Z[i, j] - Y[r, j]
                g64 = np.float64(g)
                L += g64 * g64
                out[i, j] = g
            L = 0.5 * L
        if has_sw:
            w = sw[r]
            for j in range(m):
                out[i, j] = out[i, j] * w
            L = L * np.float64(w)
        total += L
    return total


@jit
def _dense_forward(A, W, b, act, out):
    np.dot(A, W, out)
    _bias_act_dropout(out, b, act, out, out, out, False, np.uint64(0), np.uint64(0),
                      out.dtype.type(0.0), 0)


@jit(helper=True)
def _colsum_scaled(dZ, s, db):
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
def _dense_backward(dZ, A, W, s, dW, db, dA, want_dA):
    np.dot(A.T, dZ, dW)
    n_in, n_out = dW.shape
    for i in range(n_in):
        for j in range(n_out):
            dW[i, j] = dW[i, j] * s
    _colsum_scaled(dZ, s, db)
    if want_dA:
        np.dot(dZ, W.T, dA)


@jit
def _axpy_sign(dW, W, c, use_sign):
    """``dW += c * W`` (or ``c * sign(W)``) over flat arrays."""
    for i in range(dW.shape[0]):
        w = W[i]
        dW[i] = dW[i] + c * (_sign(w) if use_sign else w)


@jit
def _l2_decay(W, dW, lr, c):
    for i in range(W.shape[0]):
        w = W[i]
        W[i] = w - lr * (dW[i] + c * w)


@jit(helper=True)
def _soft_threshold(w, thr):
    a = abs(w) - thr
    return _sign(w) * (a if a > type(w)(0.0) else type(w)(0.0))


@jit
def _prox(W, thr):
    for i in range(W.shape[0]):
        W[i] = _soft_threshold(W[i], thr)


@jit
def _optimizer(opt, W, g, V, Mo, Vo, lr, mu, b1, b2, eps, t):
    ty = W.dtype.type
    lr_t = lr * math.sqrt(1.0 - b2 ** np.float64(t)) / (1.0 - b1 ** np.float64(t))
    _plain_range(opt, W, g, V, Mo, Vo, False, ty(0.0), ty(lr), ty(mu), ty(1.0 - b1), ty(b1),
                 ty(b2), ty(1.0 - b2), ty(lr_t), ty(eps))


@jit
def _sums(W):
    """``(sum W^2, sum |W|)`` of a flat array, accumulated in float64."""
    s2 = 0.0
    s1 = 0.0
    for i in range(W.shape[0]):
        w = np.float64(W[i])
        s2 += w * w
        s1 += abs(w)
    return s2, s1


# ---------------------------------------------------------------------------
# the training step, split so a threaded caller can run rows r0:r1 of a batch into its
# own gradient buffer, reduce the buffers, then update once
# ---------------------------------------------------------------------------
@jit(helper=True)
def _layer(P, offs, sizes, l):
    """Views ``W_l`` (n_in, n_out) and ``b_l`` (n_out,) into the flat buffer ``P``."""
    n_in = sizes[l]
    n_out = sizes[l + 1]
    ow = offs[l, 0]
    ob = offs[l, 1]
    return P[ow:ow + n_in * n_out].reshape(n_in, n_out), P[ob:ob + n_out]


@jit(helper=True)
def _rows(buf, off, n_units, r0, r1):
    """Rows ``r0:r1`` of the (B, n_units) block that starts at ``off`` of a flat buffer."""
    return buf[off + r0 * n_units:off + r1 * n_units].reshape(r1 - r0, n_units)


@jit(helper=True)
def _gather(X, perm, start, r0, r1, Xb):
    """``Xb[r0:r1] = X[perm[start + r0 : start + r1]]`` (flat Xb of (B, n_in) rows)."""
    n_in = X.shape[1]
    for i in range(r0, r1):
        src = X[perm[start + i]]
        dst = Xb[i * n_in:(i + 1) * n_in]
        for j in range(n_in):
            dst[j] = src[j]


@jit(helper=True)
def _batch_weight(sw, has_sw, perm, start, nb):
    """``S = sum(sw[batch])`` in float64, or ``nb`` without sample weights."""
    if not has_sw:
        return np.float64(nb)
    s = 0.0
    for i in range(nb):
        s += np.float64(sw[perm[start + i]])
    return s


@jit
def gradient_rows(X, y, Y, sw, has_sw, perm, start, r0, r1, step, P, G, offs, sizes, hoff,
                  act, out_code, eps, drop_on, layer_keys, drop_thr, drop_scale,
                  Xb, Hb, Ab, Mb, Zb, Db, scale):
    """Forward and backward of batch rows ``r0:r1``; writes ``scale * dW``, ``scale * db``.

    The batch starts at ``perm[start]``. Activations live in rows ``r0:r1`` of the
    workspace blocks, so disjoint row ranges can run concurrently; the gradient goes to
    ``G`` (laid out like ``P``), which a threaded caller makes per thread and reduces.
    Returns the weighted data-loss sum of these rows in float64.
    """
    n_layers = sizes.shape[0] - 1
    _gather(X, perm, start, r0, r1, Xb)
    A = _rows(Xb, 0, sizes[0], r0, r1)
    for l in range(n_layers - 1):
        n_out = sizes[l + 1]
        W, b = _layer(P, offs, sizes, l)
        Hl = _rows(Hb, hoff[l], n_out, r0, r1)
        # Without dropout on this layer the A and M blocks are not stored (nor written).
        Al = _rows(Ab, hoff[l], n_out, r0, r1) if drop_on[l] else Hl
        Ml = _rows(Mb, hoff[l], n_out, r0, r1) if drop_on[l] else Hl
        np.dot(A, W, Hl)
        key = _step_key(layer_keys[l], step)
        _bias_act_dropout(Hl, b, act, Hl, Al, Ml, drop_on[l], key, drop_thr[l],
                          drop_scale[l], r0)
        A = Al if drop_on[l] else Hl
    W, b = _layer(P, offs, sizes, n_layers - 1)
    Z = _rows(Zb, 0, sizes[n_layers], r0, r1)
    np.dot(A, W, Z)
    _bias_act_dropout(Z, b, _IDENTITY, Z, Z, Z, False, np.uint64(0), np.uint64(0),
                      Z.dtype.type(0.0), 0)
    lsum = _loss_rows(out_code, Z, y, Y, sw, has_sw, perm, start + r0, eps, Z)
    dZ = Z
    for l in range(n_layers - 1, -1, -1):
        n_in = sizes[l]
        W, b = _layer(P, offs, sizes, l)
        dW, db = _layer(G, offs, sizes, l)
        if l == 0:
            Aprev = _rows(Xb, 0, n_in, r0, r1)
        elif drop_on[l - 1]:
            Aprev = _rows(Ab, hoff[l - 1], n_in, r0, r1)
        else:
            Aprev = _rows(Hb, hoff[l - 1], n_in, r0, r1)
        want_dA = l > 0
        # Ping-pong between the two halves of Db so dA never overwrites the dZ it reads.
        dA = _rows(Db, (l % 2) * Db.shape[0] // 2, n_in if want_dA else 0, r0,
                   r1 if want_dA else r0)
        _dense_backward(dZ, Aprev, W, scale, dW, db, dA, want_dA)
        if want_dA:
            Hp = _rows(Hb, hoff[l - 1], n_in, r0, r1)
            Mp = _rows(Mb, hoff[l - 1], n_in, r0, r1) if drop_on[l - 1] else Hp
            _backward_act(dA, Hp, act, Mp, drop_on[l - 1], dA)
            dZ = dA
    return lsum


@jit
def _plain_range(opt, P, G, V, Mo, Vo, use_c2, c2, lr, mu, ob1, b1, b2, ob2, lr_t, eps):
    """Optimizer step on a slice ``P`` with ``g = G (+ c2 P)``, no L1, in the reference's
    rounding order.

    One loop per optimizer with its body written out: a loop that dispatches on ``opt``
    per element, or calls a helper that LLVM declines to inline in a large caller,
    stays scalar (measured 80 ns per parameter instead of < 0.5). The arrays are slices
    indexed from 0, so Numba knows the index is non-negative and drops the
    negative-index wraparound test that also blocks vectorization.
    """
    n = P.shape[0]
    if opt == _SGD:
        for i in range(n):
            w = P[i]
            g = G[i]
            if use_c2:
                g = g + c2 * w
                G[i] = g
            P[i] = w - lr * g
    elif opt == _MOMENTUM or opt == _NESTEROV:
        nesterov = opt == _NESTEROV
        for i in range(n):
            w = P[i]
            g = G[i]
            if use_c2:
                g = g + c2 * w
                G[i] = g
            v = V[i] * mu
            v = v - lr * g
            V[i] = v
            P[i] = w + (mu * v - lr * g) if nesterov else w + v
    else:
        for i in range(n):
            w = P[i]
            g = G[i]
            if use_c2:
                g = g + c2 * w
                G[i] = g
            m = Mo[i] * b1
            m = m + ob1 * g
            Mo[i] = m
            v = Vo[i] * b2
            v = v + ob2 * (g * g)
            Vo[i] = v
            P[i] = w - lr_t * m / (math.sqrt(v) + eps)


@jit
def _l1_range(opt, P, G, V, Mo, Vo, use_c2, c2, c1, l1_sub, l1_prox, thr, lr, mu, ob1, b1,
              b2, ob2, lr_t, eps):
    """Optimizer step on a slice of weights ``P`` with an L1 term (subgradient or proximal).

    Three simple loops (penalized gradient, optimizer, soft threshold) rather than one
    loop with every branch, for the vectorization reasons given in ``_plain_range``.
    """
    n = P.shape[0]
    for i in range(n):
        g = G[i]
        if use_c2:
            g = g + c2 * P[i]
        if l1_sub:
            g = g + c1 * _sign(P[i])
        G[i] = g
    _plain_range(opt, P, G, V, Mo, Vo, False, c2, lr, mu, ob1, b1, b2, ob2, lr_t, eps)
    if l1_prox:
        for i in range(n):
            P[i] = _soft_threshold(P[i], thr)


@jit
def update_range(P, G, V, Mo, Vo, lo, hi, is_weight, opt, lr, mu, b1, b2, eps, t, c2, c1,
                 l1_sub, l1_prox, want_penalty):
    """:func:`update` on parameters ``lo:hi`` of one segment (weights if ``is_weight``,
    else biases): the step is elementwise, so any cut of a segment gives the same result.

    Returns ``(sum W^2, sum |W|)`` of those weights before the step when ``want_penalty``
    and ``is_weight``, else zeros.
    """
    ty = P.dtype.type
    lr_t = lr * math.sqrt(1.0 - b2 ** np.float64(t)) / (1.0 - b1 ** np.float64(t))
    lr_, mu_, ob1, b1_ = ty(lr), ty(mu), ty(1.0 - b1), ty(b1)
    b2_, ob2, lrt_, eps_ = ty(b2), ty(1.0 - b2), ty(lr_t), ty(eps)
    s2 = 0.0
    s1 = 0.0
    if not is_weight:
        _plain_range(opt, P[lo:hi], G[lo:hi], V[lo:hi], Mo[lo:hi], Vo[lo:hi], False, ty(c2),
                     lr_, mu_, ob1, b1_, b2_, ob2, lrt_, eps_)
        return s2, s1
    if want_penalty:
        s2, s1 = _sums(P[lo:hi])
    if l1_sub or l1_prox:
        _l1_range(opt, P[lo:hi], G[lo:hi], V[lo:hi], Mo[lo:hi], Vo[lo:hi], c2 != 0.0,
                  ty(c2), ty(c1), l1_sub, l1_prox, ty(lr * c1), lr_, mu_, ob1, b1_, b2_, ob2,
                  lrt_, eps_)
    else:
        _plain_range(opt, P[lo:hi], G[lo:hi], V[lo:hi], Mo[lo:hi], Vo[lo:hi], c2 != 0.0,
                     ty(c2), lr_, mu_, ob1, b1_, b2_, ob2, lrt_, eps_)
    return s2, s1


@jit
def update(P, G, V, Mo, Vo, offs, sizes, opt, lr, mu, b1, b2, eps, t, c2, c1, l1_sub,
           l1_prox, want_penalty):
    """Penalty gradients, optimizer step and proximal L1 on every parameter.

    Per weight: ``g = G + c2 W (+ c1 sign W)`` (written back to ``G`` as the reference
    does), the optimizer update, then ``W <- soft_threshold(W, lr c1)`` with
    ``l1_prox``; biases take the optimizer step only. Returns ``(sum W^2, sum |W|)`` of
    the weights before the update (float64) when ``want_penalty``, else zeros.
    """
    s2 = 0.0
    s1 = 0.0
    n_layers = sizes.shape[0] - 1
    for l in range(n_layers):
        lo = offs[l, 0]
        a, b = update_range(P, G, V, Mo, Vo, lo, lo + sizes[l] * sizes[l + 1], True, opt,
                            lr, mu, b1, b2, eps, t, c2, c1, l1_sub, l1_prox, want_penalty)
        s2 += a
        s1 += b
        lo = offs[l, 1]
        update_range(P, G, V, Mo, Vo, lo, lo + sizes[l + 1], False, opt, lr, mu, b1, b2, eps,
                     t, c2, c1, l1_sub, l1_prox, want_penalty)
    return s2, s1


@jit
def _epoch(X, y, Y, sw, has_sw, perm, B, step0, t0, P, G, V, Mo, Vo, offs, sizes, hoff,
           act, out_code, eps, drop_on, layer_keys, drop_thr, drop_scale,
           Xb, Hb, Ab, Mb, Zb, Db,
           opt, lr, mu, b1, b2, adam_eps, l2, l1, penalty_div, l1_sub, l1_prox):
    """The reference's ``run_epoch`` loop, all batches in compiled code (see there).

    Returns ``(data_loss, penalty_loss, n_steps, status)``; status 1 = non-finite batch
    loss (nothing of that batch applied), 2 = a batch of zero total sample weight.
    """
    n = perm.shape[0]
    data = 0.0
    pen = 0.0
    n_steps = 0
    want_penalty = l2 != 0.0 or l1 != 0.0
    k = 0
    for start in range(0, n, B):
        nb = min(B, n - start)
        S = _batch_weight(sw, has_sw, perm, start, nb)
        if S == 0.0:
            return data, pen, n_steps, 2
        scale = X.dtype.type(1.0 / S)
        lsum = gradient_rows(X, y, Y, sw, has_sw, perm, start, 0, nb, step0 + k, P, G, offs,
                             sizes, hoff, act, out_code, eps, drop_on, layer_keys, drop_thr,
                             drop_scale, Xb, Hb, Ab, Mb, Zb, Db, scale)
        if not np.isfinite(lsum):
            return data, pen, n_steps, 1
        d = penalty_div if penalty_div > 0.0 else S
        c2 = l2 / d
        c1 = l1 / (2.0 * d)
        data += nb * (lsum / S)
        s2, s1 = update(P, G, V, Mo, Vo, offs, sizes, opt, lr, mu, b1, b2, adam_eps,
                        t0 + k + 1, c2, c1, l1_sub and c1 != 0.0, l1_prox and c1 != 0.0,
                        want_penalty)
        if want_penalty:
            pen += nb * ((0.5 * l2 * s2 + 0.5 * l1 * s1) / d)
        n_steps += 1
        k += 1
    return data, pen, n_steps, 0


# ---------------------------------------------------------------------------
# workspace and run_epoch
# ---------------------------------------------------------------------------
class _Workspace:
    """Buffers of one training run, allocated on its first epoch.

    Every per-layer block lives in one flat buffer per kind: hidden layer ``l``'s
    (B, n_l) block starts at ``hoff[l]`` of ``Hb`` (activations), ``Ab`` (after dropout)
    and ``Mb`` (dropout masks); ``Db`` holds two (B, max n_l) halves for the backward
    pass. ``Ab`` and ``Mb`` are empty when no layer drops units.
    """

    def __init__(self, cfg, dtype):
        dtype = np.dtype(dtype)
        sizes = np.asarray(cfg.layer_sizes, dtype=np.int64)
        B = int(cfg.batch_size)
        hidden = sizes[1:-1]
        n_h = len(hidden)
        self.key = _workspace_key(cfg, dtype)
        self.sizes = sizes
        self.B = B
        self.hoff = np.concatenate([[0], np.cumsum(B * hidden)]).astype(np.int64)
        n_units = int(B * hidden.sum())
        self.max_hidden = int(hidden.max()) if n_h else 0
        drop = np.asarray(cfg.dropout, dtype=np.float64).reshape(n_h)
        keep = 1.0 - drop
        self.drop_on = drop > 0.0
        n_drop = n_units if self.drop_on.any() else 0
        self.Xb = np.zeros(B * int(sizes[0]), dtype=dtype)
        self.Hb = np.zeros(n_units, dtype=dtype)
        self.Ab = np.zeros(n_drop, dtype=dtype)
        self.Mb = np.zeros(n_drop, dtype=dtype)
        self.Zb = np.zeros(B * int(sizes[-1]), dtype=dtype)
        self.Db = np.zeros(2 * B * self.max_hidden, dtype=dtype)
        # Hidden layer l (0-based here) is layer l + 1 of the reference's dropout_mask.
        self.layer_keys = np.array([_layer_key(cfg.seed, l + 1) for l in range(n_h)],
                                   dtype=np.uint64).reshape(n_h)
        self.drop_thr = np.array([dropout_threshold(k) if p > 0.0 else 0
                                  for p, k in zip(drop, keep)], dtype=np.uint64).reshape(n_h)
        self.drop_scale = (1.0 / keep).astype(dtype)
        self.eps = dtype.type(np.finfo(dtype).eps)


def _workspace_key(cfg, dtype):
    return (np.dtype(dtype), int(cfg.batch_size), tuple(int(s) for s in cfg.layer_sizes),
            tuple(float(p) for p in cfg.dropout), int(cfg.seed))


def _workspace(cfg, state, dtype):
    """The run's workspace, created on its first epoch (or if the config changed)."""
    ws = state.workspace.get("numba")
    if ws is None or ws.key != _workspace_key(cfg, dtype):
        ws = _Workspace(cfg, dtype)
        state.workspace["numba"] = ws
    return ws


def epoch_inputs(cfg, state, X, T, sw, perm):
    """The arrays an epoch kernel takes: ``(X, y, Y, sw, has_sw, perm)``, C-contiguous.

    Labels go to ``y`` (int64) for a softmax output, targets to ``Y`` (the model dtype)
    otherwise, the other one empty; ``sw=None`` becomes an empty array. Raises TypeError
    when X is not in the model's dtype (the kernels never cast it).
    """
    dt = state.params.dtype
    if not isinstance(X, np.ndarray) or X.dtype != dt:
        raise TypeError(f"X must be a {dt} array like the model's parameters, got "
                        f"{getattr(X, 'dtype', type(X).__name__)}")
    X = np.ascontiguousarray(X)
    perm = np.ascontiguousarray(perm, dtype=np.int64)
    if cfg.output == "softmax":
        y, Y = np.ascontiguousarray(T, dtype=np.int64), np.zeros((0, 0), dtype=dt)
    else:
        y, Y = np.zeros(0, dtype=np.int64), np.ascontiguousarray(T, dtype=dt)
    has_sw = sw is not None
    swa = np.ascontiguousarray(sw, dtype=dt) if has_sw else np.zeros(0, dtype=dt)
    return X, y, Y, swa, has_sw, perm


def run_epoch(cfg, state, X, T, sw, perm, lr, step0):
    """One epoch of mini-batch training, the whole loop in one compiled function.

    Same contract as :func:`nnopt_fast.kernels.reference.run_epoch` (see there for the
    semantics and arguments). Buffers are allocated on the first epoch of a training run
    and kept in ``state.workspace["numba"]``; no allocation or Python call per batch.

    Returns
    -------
    data_loss, penalty_loss : float
    n_steps : int
    status : int
        0 if all went well, 1 if a batch loss was not finite.

    Raises
    ------
    ZeroDivisionError
        When a batch has zero total sample weight (as the reference does).
    """
    if cfg.n_threads > 1:  # sync data-parallel or Hogwild
        from .numba_parallel import run_epoch_parallel

        return run_epoch_parallel(cfg, state, X, T, sw, perm, lr, step0)
    X, y, Y, swa, has_sw, perm = epoch_inputs(cfg, state, X, T, sw, perm)
    ws = _workspace(cfg, state, X.dtype)
    data, pen, n_steps, status = _epoch(
        X, y, Y, swa, has_sw, perm, ws.B, int(step0), int(state.t), state.params,
        state.grads, state.velocity, state.m, state.v, state.offsets, ws.sizes, ws.hoff,
        ACTIVATIONS[cfg.activation], OUTPUTS[cfg.output], ws.eps, ws.drop_on,
        ws.layer_keys, ws.drop_thr, ws.drop_scale, ws.Xb, ws.Hb, ws.Ab, ws.Mb, ws.Zb, ws.Db,
        OPTIMIZERS[cfg.optimizer], float(lr), float(cfg.momentum),
        float(cfg.beta1), float(cfg.beta2), float(cfg.epsilon), float(cfg.l2), float(cfg.l1),
        float(cfg.penalty_div), cfg.l1_method == "subgradient", cfg.l1_method == "proximal")
    if status == 2:
        raise ZeroDivisionError(f"batch {n_steps} of the epoch has zero total sample weight")
    return float(data), float(pen), int(n_steps), int(status)


# ---------------------------------------------------------------------------
# public kernels: thin Python wrappers with the reference's names and signatures
# ---------------------------------------------------------------------------
def _code(table, value, name):
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}") from None


def _check_shape(name, a, shape):
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}; expected {tuple(shape)}")


def _input(a, dtype):
    """A C-contiguous array of ``dtype`` with the data of ``a`` (a copy only if needed)."""
    return np.ascontiguousarray(a, dtype=dtype)


class _Writable:
    """A C-contiguous buffer standing in for ``out``; :meth:`done` copies back if needed."""

    def __init__(self, out):
        if not isinstance(out, np.ndarray):
            raise TypeError(f"output arrays must be numpy arrays, got {type(out).__name__}")
        self.out = out
        ok = out.flags.c_contiguous and out.flags.writeable
        self.buf = out if ok else np.array(out, order="C")

    def done(self):
        if self.buf is not self.out:
            self.out[...] = self.buf
        return self.out


def _flat(a):
    return a.reshape(-1)


def dense_forward(A, W, b, activation, out):
    """Dense layer with fused bias and activation: ``out = g(A @ W + b)``.

    See :func:`nnopt_fast.kernels.reference.dense_forward`. ``out`` is written in place
    and returned; bias and activation are applied in one pass after the GEMM.
    """
    check_same_dtype("dense_forward", out=out, A=A, W=W, b=b)
    act = _code(ACTIVATIONS, activation, "activation")
    o = _Writable(out)
    dt = out.dtype
    A, W = _input(A, dt), _input(W, dt)
    if A.ndim != 2 or W.ndim != 2 or A.shape[1] != W.shape[0]:
        raise ValueError(f"A {A.shape} and W {W.shape} cannot be multiplied")
    _check_shape("out", out, (A.shape[0], W.shape[1]))
    b = _input(np.broadcast_to(b, (W.shape[1],)), dt)
    _dense_forward(A, W, b, act, o.buf)
    return o.done()


def activation_backward(H, dA, activation, out, M=None):
    """Backward through an activation, from its outputs: ``out = dA * g'(H) [* M]``.

    See :func:`nnopt_fast.kernels.reference.activation_backward`; one fused pass,
    ``out`` may be ``dA`` itself.
    """
    check_same_dtype("activation_backward", out=out, H=H, dA=dA, M=M)
    act = _code(ACTIVATIONS, activation, "activation")
    o = _Writable(out)
    dt = out.dtype
    _check_shape("dA", dA, out.shape)
    _check_shape("H", H, out.shape)
    n = out.size
    Hf = _input(H, dt).reshape(1, n)
    dAf = dA.reshape(1, n) if dA is out and o.buf is out else _input(dA, dt).reshape(1, n)
    if M is not None:
        _check_shape("M", M, out.shape)
        Mf = _input(M, dt).reshape(1, n)
    else:
        Mf = Hf
    _backward_act(dAf, Hf, act, Mf, M is not None, o.buf.reshape(1, n))
    return o.done()


def dropout_mask(seed, layer, step, row0, keep, out):
    """Inverted-dropout mask from the counter-based generator of the reference.

    ``out[i, j] = 1/keep`` if unit ``(row0 + i, j)`` of ``layer`` is kept at ``step``,
    else 0; bit-identical to :func:`nnopt_fast.kernels.reference.dropout_mask`.
    """
    if out.ndim != 2:
        raise ValueError(f"out must be 2-D (n_samples, n_units), got shape {out.shape}")
    scale = out.dtype.type(1.0 / keep)
    key = np.uint64(ref.dropout_key(seed, layer, step))
    thr = np.uint64(dropout_threshold(keep))
    o = _Writable(out)
    _fill_mask(key, thr, scale, int(row0), o.buf)
    return o.done()


def _loss(code, Z, T, sw, out):
    o = _Writable(out)
    dt = out.dtype
    _check_shape("Z", Z, out.shape)
    if Z.ndim != 2:
        raise ValueError(f"Z must be 2-D (n_samples, n_outputs), got shape {Z.shape}")
    n, c = Z.shape
    if n and c == 0:
        raise ValueError("Z has no output columns")
    Zc = o.buf if Z is out else _input(Z, dt)
    if code == _SOFTMAX:
        y = _input(T, np.int64)
        _check_shape("y", y, (n,))
        if n and (y.min() < 0 or y.max() >= c):
            raise IndexError(f"class labels must be in 0..{c - 1}")
        Y = np.zeros((0, 0), dtype=dt)
    else:
        Y = _input(T, dt)
        _check_shape("Y", Y, (n, c))
        y = np.zeros(0, dtype=np.int64)
    if sw is not None:
        swa = _input(sw, dt)
        _check_shape("sw", swa, (n,))
    else:
        swa = np.zeros(0, dtype=dt)
    rows = np.arange(n, dtype=np.int64)
    eps = dt.type(np.finfo(dt).eps)
    total = _loss_rows(code, Zc, y, Y, swa, sw is not None, rows, 0, eps, o.buf)
    o.done()
    return float(total)


def softmax_cross_entropy(Z, y, sw, out):
    """Softmax output with cross-entropy on integer labels; returns the weighted loss sum.

    See :func:`nnopt_fast.kernels.reference.softmax_cross_entropy`: ``out`` (may be
    ``Z``) receives ``(P - onehot(y)) * sw``; the loss is accumulated in float64.
    """
    check_same_dtype("softmax_cross_entropy", out=out, Z=Z, sw=sw)
    return _loss(_SOFTMAX, Z, y, sw, out)


def logistic_cross_entropy(Z, Y, sw, out):
    """Logistic outputs with binary cross-entropy; returns the weighted loss sum.

    See :func:`nnopt_fast.kernels.reference.logistic_cross_entropy`.
    """
    check_same_dtype("logistic_cross_entropy", out=out, Z=Z, Y=Y, sw=sw)
    return _loss(_LOGISTIC_OUT, Z, Y, sw, out)


def squared_error(Z, Y, sw, out):
    """Identity output with squared error ``1/2 ||z - y||^2``; returns the weighted sum.

    See :func:`nnopt_fast.kernels.reference.squared_error`.
    """
    check_same_dtype("squared_error", out=out, Z=Z, Y=Y, sw=sw)
    return _loss(_SQUARED, Z, Y, sw, out)


def output_loss(output, Z, T, sw, out):
    """Dispatch to the loss of ``output`` (softmax, logistic or identity)."""
    check_same_dtype("output_loss", out=out, Z=Z, T=T, sw=sw)
    return _loss(_code(OUTPUTS, output, "output"), Z, T, sw, out)


def dense_backward(dZ, A, W, scale, dW, db, dA=None):
    """Backward through a dense layer: ``dW = s A^T dZ``, ``db = s sum(dZ)``, ``dA = dZ W^T``.

    See :func:`nnopt_fast.kernels.reference.dense_backward` (``s = dtype(scale)``).
    """
    check_same_dtype("dense_backward", dW=dW, dZ=dZ, A=A, W=W, db=db, dA=dA)
    dt = dW.dtype
    dZ, A, W = _input(dZ, dt), _input(A, dt), _input(W, dt)
    if dZ.ndim != 2 or A.ndim != 2 or W.ndim != 2:
        raise ValueError("dZ, A and W must be 2-D")
    n, c = dZ.shape
    k = A.shape[1]
    _check_shape("A", A, (n, k))
    _check_shape("W", W, (k, c))
    _check_shape("dW", dW, (k, c))
    _check_shape("db", db, (c,))
    odW, odb = _Writable(dW), _Writable(db)
    if dA is not None:
        _check_shape("dA", dA, (n, k))
        odA = _Writable(dA)
        dA_buf = odA.buf
    else:
        dA_buf = np.zeros((0, 0), dtype=dt)
    _dense_backward(dZ, A, W, dt.type(scale), odW.buf, odb.buf, dA_buf, dA is not None)
    odW.done()
    odb.done()
    if dA is not None:
        odA.done()


def _inplace(W):
    """A writable C-contiguous 1-D buffer for ``W`` and the Writable that copies it back."""
    o = _Writable(W)
    return o, _flat(o.buf)


def _same(name, a, W):
    _check_shape(name, a, W.shape)
    return _flat(_input(a, W.dtype))


def inplace_l2_grad(dW, W, c):
    """Coupled L2: ``dW += c * W`` in place."""
    check_same_dtype("inplace_l2_grad", dW=dW, W=W)
    o, d = _inplace(dW)
    _axpy_sign(d, _same("W", W, dW), dW.dtype.type(c), False)
    o.done()


def inplace_l1_subgradient(dW, W, c):
    """L1 subgradient: ``dW += c * sign(W)`` in place, with ``sign(0) = 0``."""
    check_same_dtype("inplace_l1_subgradient", dW=dW, W=W)
    o, d = _inplace(dW)
    _axpy_sign(d, _same("W", W, dW), dW.dtype.type(c), True)
    o.done()


def l2_decay_step(W, dW, lr, c):
    """Fused weight-decay SGD step, in place: ``W <- W - lr * (dW + c * W)``."""
    check_same_dtype("l2_decay_step", W=W, dW=dW)
    t = W.dtype.type
    g = _same("dW", dW, W)
    o, w = _inplace(W)
    _l2_decay(w, g, t(lr), t(c))
    o.done()


def l1_prox_step(W, threshold):
    """Proximal L1 step (soft threshold), in place: ``W <- sign(W) max(|W| - threshold, 0)``."""
    o, w = _inplace(W)
    _prox(w, W.dtype.type(threshold))
    o.done()


def _step(opt, W, g, V, M, Vo, lr, mu=0.0, beta1=0.9, beta2=0.999, eps=1e-8, t=1):
    dt = W.dtype
    gf = _same("g", g, W)
    bufs = []
    flats = []
    for name, a in (("V", V), ("M", M), ("V", Vo)):
        if a is None:
            flats.append(np.zeros(0, dtype=dt))
            continue
        _check_shape(name, a, W.shape)
        if a.dtype != dt:
            raise TypeError(f"{name} must have the dtype of W ({dt}), got {a.dtype}")
        ob, f = _inplace(a)
        bufs.append(ob)
        flats.append(f)
    o, w = _inplace(W)
    _optimizer(opt, w, gf, flats[0], flats[1], flats[2], float(lr), float(mu), float(beta1),
               float(beta2), float(eps), int(t))
    o.done()
    for ob in bufs:
        ob.done()


def sgd_step(W, g, lr):
    """Plain gradient step, in place: ``W <- W - lr * g``."""
    check_same_dtype("sgd_step", W=W, g=g)
    _step(_SGD, W, g, None, None, None, lr)


def momentum_step(W, g, V, lr, mu):
    """Heavy-ball momentum, in place: ``V <- mu V - lr g``; ``W <- W + V``."""
    check_same_dtype("momentum_step", W=W, g=g, V=V)
    _step(_MOMENTUM, W, g, V, None, None, lr, mu)


def nesterov_step(W, g, V, lr, mu):
    """Nesterov momentum, in place: ``V <- mu V - lr g``; ``W <- W + mu V - lr g``."""
    check_same_dtype("nesterov_step", W=W, g=g, V=V)
    _step(_NESTEROV, W, g, V, None, None, lr, mu)


def adam_step(W, g, M, V, lr, beta1, beta2, eps, t):
    """Adam (scikit-learn's form), in place, for update number ``t >= 1``.

    See :func:`nnopt_fast.kernels.reference.adam_step`.
    """
    check_same_dtype("adam_step", W=W, g=g, M=M, V=V)
    _step(_ADAM, W, g, None, M, V, lr, 0.0, beta1, beta2, eps, t)


def penalty(coefs, l2, l1, div):
    """Penalty ``(l2/2 sum ||W||^2 + l1/2 sum |W|) / div`` in float64 (biases excluded)."""
    s2 = 0.0
    s1 = 0.0
    for W in coefs:
        a, b = _sums(_flat(np.ascontiguousarray(W)))
        if l2:
            s2 += float(a)
        if l1:
            s1 += float(b)
    return (0.5 * l2 * s2 + 0.5 * l1 * s1) / div


def backend_info():
    """Details reported by :func:`nnopt_fast.backends`: versions, cache, math options."""
    import llvmlite

    info = {
        "detail": "Numba @njit kernels; the whole epoch in one compiled function",
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "svml": bool(getattr(numba.config, "USING_SVML", False)),
        "fastmath": sorted(FASTMATH),
        "tanh": "float32: rational approximation (max abs err < 1e-6); float64: libm",
        "threading": "single-threaded kernels (no numba parallel threading layer)",
        "compiled_epoch_signatures": len(_epoch.signatures),
        "epoch_cache_hits": sum(_epoch.stats.cache_hits.values()),
    }
    info.update(cache_info())
    return info


def forward(coefs, intercepts, activation, X, out):
    """The network's output pre-activations ``out = Z`` (see the reference's ``forward``)."""
    A = X
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        last = l == len(coefs) - 1
        Z = out if last else np.empty((A.shape[0], W.shape[1]), dtype=out.dtype)
        dense_forward(A, W, b, "identity" if last else activation, Z)
        A = Z
    return out

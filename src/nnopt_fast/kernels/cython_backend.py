"""Cython + C backend: the reference's kernels, and a whole epoch in one compiled call."""

import os

import numpy as np

from . import reference as _ref
from .reference import ACTIVATIONS, KERNELS, OPTIMIZERS, OUTPUTS, dropout_threshold

try:
    from . import _cython
except ImportError as exc:  # pragma: no cover - depends on how the package was built
    raise ImportError(
        "the compiled extension nnopt_fast.kernels._cython is not built (the package was "
        "installed with NNOPT_NO_EXTENSION=1, or its build failed); reinstall with a C "
        f"compiler, Cython and NumPy available ({exc})"
    ) from exc

__all__ = ["BACKEND_NAME", "backend_info", "ACTIVATIONS", "OUTPUTS", "OPTIMIZERS",
           *KERNELS]

#: Name of this backend in the registry.
BACKEND_NAME = "cython"

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
#: Workspace buffers start on 64-byte boundaries (one AVX-512 vector).
_ALIGN_BYTES = 64


def backend_info():
    """Details reported by :func:`nnopt_fast.backends`.

    Returns
    -------
    dict
        ``simd``: the ``target_clones`` variant this CPU runs ("avx512f", "avx2" or
        "default"); ``blas``: where the GEMMs come from; ``blas_library``: that BLAS's
        name, version and threads (None if unknown); ``openmp_threads``; ``detail``.
    """
    simd = _cython.simd_path()
    return {
        "simd": simd,
        "blas": "scipy.linalg.cython_blas (sgemm/dgemm of SciPy's bundled BLAS)",
        "blas_library": _scipy_blas(),
        "openmp_threads": _cython.openmp_threads(),
        "detail": f"Cython + C fused kernels, {simd} code path, whole epoch in one nogil call",
    }


def _scipy_blas():
    """Name, version and thread count of the BLAS that SciPy loaded, as threadpoolctl sees it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for lib in threadpool_info():
        # Wheels bundle SciPy's own BLAS in scipy.libs (NumPy's lives in numpy.libs).
        folder = os.path.basename(os.path.dirname(lib.get("filepath", "")))
        if lib.get("user_api") == "blas" and folder.startswith("scipy"):
            return {k: lib.get(k) for k in ("internal_api", "version", "num_threads",
                                            "threading_layer", "architecture")}
    return None


# ---------------------------------------------------------------------------
# argument handling shared by the single kernels
# ---------------------------------------------------------------------------
def _float_dtype(a, name):
    dt = np.asarray(a).dtype
    if dt not in _FLOATS:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def _input(a, dt):
    """A C-contiguous array of dtype ``dt`` with the values of ``a`` (no copy if possible)."""
    return np.ascontiguousarray(a, dtype=dt)


class _Out:
    """A C-contiguous buffer of dtype ``dt`` for writing into ``out``; copied back by done()."""

    def __init__(self, out, dt, name="out"):
        if not isinstance(out, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
        self.out = out
        direct = out.dtype == dt and out.flags.c_contiguous and out.flags.writeable
        self.buf = out if direct else np.empty(out.shape, dtype=dt)
        if not direct and out.size:
            self.buf[...] = out
        self.direct = direct

    def done(self):
        if not self.direct:
            self.out[...] = self.buf
        return self.out


def _check_shape(a, shape, name):
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}; expected {tuple(shape)}")


def _code(table, value, name):
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}") from None


# ---------------------------------------------------------------------------
# single kernels: the reference's names, signatures and semantics
# ---------------------------------------------------------------------------
def dense_forward(A, W, b, activation, out):
    """Dense layer with fused bias and activation: ``out = g(A @ W + b)``.

    One GEMM, then one pass adding ``b`` and applying ``g``. Same parameters as
    :func:`nnopt_fast.kernels.reference.dense_forward`: ``A`` (n_samples, n_in), ``W``
    (n_in, n_out), ``b`` (n_out,), ``out`` (n_samples, n_out), float32 or float64;
    ``out`` is written in place and returned.
    """
    _ref.check_same_dtype("dense_forward", out=out, A=A, W=W, b=b)
    act = _code(ACTIVATIONS, activation, "activation")
    dt = _float_dtype(A, "A")
    A, W, b = _input(A, dt), _input(W, dt), _input(b, dt)
    if A.ndim != 2 or W.ndim != 2 or A.shape[1] != W.shape[0]:
        raise ValueError(f"A of shape {A.shape} and W of shape {W.shape} do not chain")
    _check_shape(b, (W.shape[1],), "b")
    o = _Out(out, dt)
    _check_shape(o.buf, (A.shape[0], W.shape[1]), "out")
    _cython.dense_forward(A, W, b, act, o.buf)
    return o.done()


def activation_backward(H, dA, activation, out, M=None):
    """Backward through an activation from its outputs: ``out = dA * g'(H) [* M]``.

    See :func:`nnopt_fast.kernels.reference.activation_backward`; ``out`` may be ``dA``.
    """
    _ref.check_same_dtype("activation_backward", out=out, H=H, dA=dA, M=M)
    act = _code(ACTIVATIONS, activation, "activation")
    dt = _float_dtype(H, "H")
    H, dA = _input(H, dt), _input(dA, dt)
    _check_shape(dA, H.shape, "dA")
    if M is not None:
        M = _input(M, dt)
        _check_shape(M, H.shape, "M")
        M = M.reshape(-1)
    o = _Out(out, dt)
    _check_shape(o.buf, H.shape, "out")
    _cython.act_backward(H.reshape(-1), dA.reshape(-1), act, o.buf.reshape(-1), M)
    return o.done()


def dropout_mask(seed, layer, step, row0, keep, out):
    """Inverted-dropout mask from the counter-based generator, bit-identical to the reference.

    See :func:`nnopt_fast.kernels.reference.dropout_mask`. ``out`` (n_samples, n_units),
    float32 or float64, is written in place and returned.
    """
    dt = _float_dtype(out, "out")
    scale = 1.0 / keep
    key = _cython.dropout_key(int(seed) & 0xFFFFFFFFFFFFFFFF, layer, step)
    o = _Out(out, dt)
    if o.buf.ndim != 2:
        raise ValueError(f"out must be 2-D, got shape {o.buf.shape}")
    _cython.dropout_mask(key, row0, dropout_threshold(keep), scale, o.buf)
    return o.done()


def _loss(code, Z, T, sw, out):
    dt = _float_dtype(Z, "Z")
    Z = _input(Z, dt)
    if Z.ndim != 2:
        raise ValueError(f"Z must be 2-D, got shape {Z.shape}")
    n, k = Z.shape
    if code == OUTPUTS["softmax"]:
        T = np.ascontiguousarray(T, dtype=np.int64)
        _check_shape(T, (n,), "y")
        if n and (T.min() < 0 or T.max() >= k):
            raise IndexError(f"labels y must lie in [0, {k}), got [{T.min()}, {T.max()}]")
    else:
        T = _input(T, dt)
        _check_shape(T, Z.shape, "Y")
    if sw is not None:
        sw = _input(sw, dt)
        _check_shape(sw, (n,), "sw")
    o = _Out(out, dt)
    _check_shape(o.buf, Z.shape, "out")
    total = _cython.output_loss(code, Z, T, sw, o.buf)
    o.done()
    return float(total)


def softmax_cross_entropy(Z, y, sw, out):
    """Softmax output with cross-entropy on integer labels; returns ``sum_i sw_i L_i``.

    See :func:`nnopt_fast.kernels.reference.softmax_cross_entropy`; ``out`` may be ``Z``.
    """
    _ref.check_same_dtype("softmax_cross_entropy", out=out, Z=Z, sw=sw)
    return _loss(OUTPUTS["softmax"], Z, y, sw, out)


def logistic_cross_entropy(Z, Y, sw, out):
    """Logistic outputs with binary cross-entropy; returns ``sum_i sw_i L_i``.

    See :func:`nnopt_fast.kernels.reference.logistic_cross_entropy`.
    """
    _ref.check_same_dtype("logistic_cross_entropy", out=out, Z=Z, Y=Y, sw=sw)
    return _loss(OUTPUTS["logistic"], Z, Y, sw, out)


def squared_error(Z, Y, sw, out):
    """Identity output with squared error ``1/2 ||z - y||^2``; returns ``sum_i sw_i L_i``.

    See :func:`nnopt_fast.kernels.reference.squared_error`.
    """
    _ref.check_same_dtype("squared_error", out=out, Z=Z, Y=Y, sw=sw)
    return _loss(OUTPUTS["identity"], Z, Y, sw, out)


def output_loss(output, Z, T, sw, out):
    """Dispatch to the loss of ``output`` (softmax, logistic or identity)."""
    _ref.check_same_dtype("output_loss", out=out, Z=Z, T=T, sw=sw)
    return _loss(_code(OUTPUTS, output, "output"), Z, T, sw, out)


def dense_backward(dZ, A, W, scale, dW, db, dA=None):
    """Backward through a dense layer: ``dW = scale A^T dZ``, ``db = scale sum(dZ)``, ``dA = dZ W^T``.

    See :func:`nnopt_fast.kernels.reference.dense_backward`; three passes: two GEMMs and
    one column sum.
    """
    _ref.check_same_dtype("dense_backward", dW=dW, dZ=dZ, A=A, W=W, db=db, dA=dA)
    dt = _float_dtype(dZ, "dZ")
    dZ, A, W = _input(dZ, dt), _input(A, dt), _input(W, dt)
    if dZ.ndim != 2 or A.ndim != 2 or W.ndim != 2:
        raise ValueError("dZ, A and W must be 2-D")
    _check_shape(A, (dZ.shape[0], W.shape[0]), "A")
    _check_shape(W, (A.shape[1], dZ.shape[1]), "W")
    oW, ob = _Out(dW, dt, "dW"), _Out(db, dt, "db")
    _check_shape(oW.buf, W.shape, "dW")
    _check_shape(ob.buf, (W.shape[1],), "db")
    oA = None
    if dA is not None:
        oA = _Out(dA, dt, "dA")
        _check_shape(oA.buf, A.shape, "dA")
    _cython.dense_backward(dZ, A, W, float(scale), oW.buf, ob.buf,
                           None if oA is None else oA.buf)
    oW.done()
    ob.done()
    if oA is not None:
        oA.done()


def _flat_pair(X, Y, nameX, nameY):
    """(in-place buffer for X, flat view of it, flat contiguous Y) with matching shapes."""
    dt = _float_dtype(X, nameX)
    o = _Out(X, dt, nameX)
    Y = _input(Y, dt)
    _check_shape(Y, o.buf.shape, nameY)
    return o, o.buf.reshape(-1), Y.reshape(-1)


def inplace_l2_grad(dW, W, c):
    """Coupled L2 gradient, in place: ``dW += c * W``."""
    _ref.check_same_dtype("inplace_l2_grad", dW=dW, W=W)
    if c == 0:
        # The compiled pass skips a zero coefficient; keep 0 * W's NaN for infinite W.
        _ref.inplace_l2_grad(dW, W, c)
        return
    o, g, w = _flat_pair(dW, W, "dW", "W")
    _cython.add_penalty_grad(g, w, float(c), 0.0)
    o.done()


def inplace_l1_subgradient(dW, W, c):
    """L1 subgradient, in place: ``dW += c * sign(W)`` with ``sign(0) = 0``."""
    _ref.check_same_dtype("inplace_l1_subgradient", dW=dW, W=W)
    if c == 0:
        _ref.inplace_l1_subgradient(dW, W, c)
        return
    o, g, w = _flat_pair(dW, W, "dW", "W")
    _cython.add_penalty_grad(g, w, 0.0, float(c))
    o.done()


def l2_decay_step(W, dW, lr, c):
    """Fused weight-decay SGD step, in place: ``W <- W - lr * (dW + c * W)``."""
    _ref.check_same_dtype("l2_decay_step", W=W, dW=dW)
    o, w, g = _flat_pair(W, dW, "W", "dW")
    _cython.l2_decay_step(w, g, float(lr), float(c))
    o.done()


def l1_prox_step(W, threshold):
    """Proximal L1 step (soft threshold), in place: ``W <- sign(W) max(|W| - threshold, 0)``."""
    dt = _float_dtype(W, "W")
    o = _Out(W, dt, "W")
    _cython.l1_prox(o.buf.reshape(-1), float(threshold))
    o.done()


def _step(opt, W, g, V, M, lr, mu=0.0, b1=0.0, b2=0.0, eps=0.0, t=1):
    o, w, gf = _flat_pair(W, g, "W", "g")
    dt = o.buf.dtype
    empty = np.zeros(0, dtype=dt)
    oV = oM = None
    if V is not None:
        oV = _Out(V, dt, "V")
        _check_shape(oV.buf, o.buf.shape, "V")
    if M is not None:
        oM = _Out(M, dt, "M")
        _check_shape(oM.buf, o.buf.shape, "M")
    _cython.optimizer_step(opt, w, gf, empty if oV is None else oV.buf.reshape(-1),
                           empty if oM is None else oM.buf.reshape(-1), float(lr), float(mu),
                           float(b1), float(b2), float(eps), float(t))
    for x in (o, oV, oM):
        if x is not None:
            x.done()


def sgd_step(W, g, lr):
    """Plain gradient step, in place: ``W <- W - lr * g``."""
    _ref.check_same_dtype("sgd_step", W=W, g=g)
    _step(OPTIMIZERS["sgd"], W, g, None, None, lr)


def momentum_step(W, g, V, lr, mu):
    """Heavy-ball momentum, in place: ``V <- mu V - lr g``; ``W <- W + V``."""
    _ref.check_same_dtype("momentum_step", W=W, g=g, V=V)
    _step(OPTIMIZERS["momentum"], W, g, V, None, lr, mu)


def nesterov_step(W, g, V, lr, mu):
    """Nesterov momentum, in place: ``V <- mu V - lr g``; ``W <- W + mu V - lr g``."""
    _ref.check_same_dtype("nesterov_step", W=W, g=g, V=V)
    _step(OPTIMIZERS["nesterov"], W, g, V, None, lr, mu)


def adam_step(W, g, M, V, lr, beta1, beta2, eps, t):
    """Adam (scikit-learn's form), in place, for update number ``t >= 1``.

    See :func:`nnopt_fast.kernels.reference.adam_step`.
    """
    _ref.check_same_dtype("adam_step", W=W, g=g, M=M, V=V)
    _step(OPTIMIZERS["adam"], W, g, V, M, lr, 0.0, beta1, beta2, eps, t)


def penalty(coefs, l2, l1, div):
    """Penalty value ``(l2/2 sum ||W||^2 + l1/2 sum |W|) / div`` in float64 (biases excluded)."""
    s2 = 0.0
    s1 = 0.0
    for W in coefs:
        w = _input(W, _float_dtype(W, "coefs")).reshape(-1)
        a2, a1 = _cython.penalty_sums(w)
        if l2:
            s2 += a2
        if l1:
            s1 += a1
    return (0.5 * l2 * s2 + 0.5 * l1 * s1) / div


# ---------------------------------------------------------------------------
# the whole epoch
# ---------------------------------------------------------------------------
def _aligned(n, itemsize):
    step = _ALIGN_BYTES // itemsize
    return -(-n // step) * step


def _build_workspace(cfg, dt):
    """Plan tables and one flat buffer holding every per-batch array of the epoch.

    For layer l (0 = input, L = output) row l of ``boff`` holds the offsets of A_l (input
    of layer l+1), H_l (activation before dropout), M_l (dropout mask) and D_l (delta),
    -1 where absent. Without dropout A_l is H_l; at the output H_L is D_L (dZ overwrites Z).
    """
    sizes = np.asarray(cfg.layer_sizes, dtype=np.int64)
    L = len(sizes) - 1
    B = int(cfg.batch_size)
    itemsize = np.dtype(dt).itemsize
    boff = np.full((L + 1, 4), -1, dtype=np.int64)
    thr = np.zeros(L + 1, dtype=np.uint64)
    keep_inv = np.ones(L + 1, dtype=np.float64)
    total = 0

    def take(n_cols):
        nonlocal total
        off = total
        total += _aligned(B * int(n_cols), itemsize)
        return off

    boff[0, 0] = take(sizes[0])
    for l in range(1, L):
        p = float(cfg.dropout[l - 1]) if cfg.dropout else 0.0
        boff[l, 1] = take(sizes[l])
        if p > 0.0:
            keep = 1.0 - p
            thr[l] = dropout_threshold(keep)
            keep_inv[l] = 1.0 / keep
            boff[l, 0] = take(sizes[l])
            boff[l, 2] = take(sizes[l])
        else:
            boff[l, 0] = boff[l, 1]
        boff[l, 3] = take(sizes[l])
    boff[L, 1] = boff[L, 3] = take(sizes[L])
    subgrad = cfg.l1_method == "subgradient"
    opt = _code(OPTIMIZERS, cfg.optimizer, "optimizer")
    plan = {
        "n_layers": L,
        "act": _code(ACTIVATIONS, cfg.activation, "activation"),
        "out": _code(OUTPUTS, cfg.output, "output"),
        "opt": opt,
        # The decay-in-GEMM update needs the whole step to be W - lr (dW + c2 W).
        "fused_sgd": opt == OPTIMIZERS["sgd"] and not (cfg.l1 and subgrad),
        "prox": cfg.l1_method == "proximal",
        "subgrad": subgrad,
        "batch": B,
        "sizes": sizes,
        "boff": boff,
        "thr": thr,
        "keep_inv": keep_inv,
        "seed": int(cfg.seed) & 0xFFFFFFFFFFFFFFFF,
        "l2": float(cfg.l2),
        "l1": float(cfg.l1),
        "penalty_div": float(cfg.penalty_div),
        "mu": float(cfg.momentum),
        "b1": float(cfg.beta1),
        "b2": float(cfg.beta2),
        "eps": float(cfg.epsilon),
    }
    return {"cfg": cfg, "dtype": np.dtype(dt), "plan": plan,
            "buf": _aligned_zeros(max(total, 1), dt)}


def _aligned_zeros(n, dt):
    """Zeros of length n whose first element sits on a 64-byte boundary."""
    itemsize = np.dtype(dt).itemsize
    raw = np.zeros(n + _ALIGN_BYTES // itemsize, dtype=dt)
    skip = (-raw.ctypes.data % _ALIGN_BYTES) // itemsize
    return raw[skip:skip + n]


def _workspace(cfg, state, dt):
    """The buffers of this training run: built on the first epoch, then reused."""
    ws = state.workspace.get("cython")
    if ws is None or ws["cfg"] != cfg or ws["dtype"] != dt:
        ws = _build_workspace(cfg, dt)
        ws["plan"]["poff"] = np.ascontiguousarray(state.offsets, dtype=np.int64).reshape(-1)
        state.workspace["cython"] = ws
    return ws


def _check_epoch_arrays(cfg, state, X, T, sw, perm):
    P = state.params
    dt = P.dtype
    if dt not in _FLOATS or P.ndim != 1 or not P.flags.c_contiguous:
        raise TypeError("state.params must be a contiguous 1-D float32 or float64 array")
    if not (isinstance(X, np.ndarray) and X.dtype == dt and X.ndim == 2
            and X.flags.c_contiguous):
        raise TypeError(f"X must be a C-contiguous 2-D {dt} array")
    n, n_in = X.shape
    if n_in != cfg.layer_sizes[0]:
        raise ValueError(f"X has {n_in} features; the model expects {cfg.layer_sizes[0]}")
    k = cfg.layer_sizes[-1]
    if cfg.output == "softmax":
        if not (isinstance(T, np.ndarray) and T.dtype == np.int64 and T.shape == (n,)
                and T.flags.c_contiguous):
            raise TypeError(f"T must be a contiguous int64 array of shape ({n},)")
        if n and (T.min() < 0 or T.max() >= k):
            raise ValueError(f"labels T must lie in [0, {k})")
    elif not (isinstance(T, np.ndarray) and T.dtype == dt and T.shape == (n, k)
              and T.flags.c_contiguous):
        raise TypeError(f"T must be a C-contiguous {dt} array of shape ({n}, {k})")
    if sw is not None and not (isinstance(sw, np.ndarray) and sw.dtype == dt
                               and sw.shape == (n,) and sw.flags.c_contiguous):
        raise TypeError(f"sw must be None or a contiguous {dt} array of shape ({n},)")
    if not (isinstance(perm, np.ndarray) and perm.dtype == np.int64 and perm.ndim == 1
            and perm.flags.c_contiguous):
        raise TypeError("perm must be a contiguous 1-D int64 array")
    if perm.size and (perm.min() < 0 or perm.max() >= n):
        raise ValueError(f"perm must index rows of X, in [0, {n})")
    for name in ("grads", "velocity", "m", "v"):
        a = getattr(state, name)
        if a.dtype != dt or not a.flags.c_contiguous or a.size not in (0, P.size):
            raise TypeError(f"state.{name} must be a contiguous {dt} array like params")
    return dt


def run_epoch(cfg, state, X, T, sw, perm, lr, step0):
    """One epoch of mini-batch training in a single compiled call with the GIL released.

    Same semantics, parameters and return value as
    :func:`nnopt_fast.kernels.reference.run_epoch`. Every per-batch buffer lives in
    ``state.workspace["cython"]``, allocated on the first epoch of a run; no Python call and
    no allocation happen per batch. Plain SGD (without subgradient L1) updates each weight
    matrix with one GEMM, ``W <- (1 - lr c2) W - (lr / S) A^T dZ``.

    Returns
    -------
    data_loss, penalty_loss : float
    n_steps : int
    status : int
        0, or 1 if a batch loss was not finite (that batch made no update).

    Raises
    ------
    ZeroDivisionError
        If the sample weights of a batch sum to 0, as the reference does.
    """
    dt = _check_epoch_arrays(cfg, state, X, T, sw, perm)
    if cfg.optimizer in ("momentum", "nesterov") and state.velocity.size != state.params.size:
        raise ValueError(f"state.velocity must be allocated for optimizer {cfg.optimizer!r}")
    if cfg.optimizer == "adam" and (state.m.size != state.params.size
                                     or state.v.size != state.params.size):
        raise ValueError("state.m and state.v must be allocated for optimizer 'adam'")
    ws = _workspace(cfg, state, dt)
    hogwild = cfg.n_threads > 1 and cfg.parallel == "hogwild"
    if cfg.n_threads > 1:  # sync data-parallel or Hogwild: see _cython_parallel.pxi
        out = _cython.run_epoch_parallel(ws, cfg.n_threads, hogwild, state.params,
                                         state.grads, state.velocity, state.m, state.v, X, T,
                                         sw, perm, float(lr), int(step0), int(state.t))
    else:
        out = _cython.run_epoch(ws["plan"], state.params, state.grads, state.velocity,
                                state.m, state.v, ws["buf"], X, T, sw, perm, float(lr),
                                int(step0), int(state.t))
    if out[3] == 2:
        which = "a batch" if hogwild else f"batch {out[2]}"
        raise ZeroDivisionError(f"{which} of the epoch has zero total sample weight")
    return out

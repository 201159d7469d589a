"""The validating dispatcher: every kernel's argument handling, written once for all backends.

A backend contributes only typed bodies: functions that take validated, C-contiguous
arrays of one float dtype (plus integer codes for activations and outputs) and write
their outputs in place. :func:`make_kernels` wraps them into the public kernels, with
the reference's names, signatures and docstrings. So every backend accepts the same
inputs and raises the same error, with the same message, for the same bad input:

- float arrays of two dtypes in one call: ``TypeError`` naming both arrays (no cast);
- a shape that does not fit, an unknown activation or output, labels outside
  ``[0, n_classes)``, a read-only output: ``ValueError`` naming the argument;
- a matrix dimension above :data:`MAX_BLAS_DIM` (BLAS's 32-bit int), checked on the
  shapes before anything is copied or computed: ``ValueError``.

Inputs of another layout (Fortran order, strided views) or of an integer dtype are copied
to C order in the call's dtype; outputs of another layout are computed in a buffer and
copied back. Inputs are never modified.
"""

import numpy as np

from .codes import ACTIVATIONS, OUTPUTS, code
from .hashing import MASK64

__all__ = ["MAX_BLAS_DIM", "check_same_dtype", "make_kernels", "KERNEL_NAMES"]

#: BLAS takes matrix dimensions as a 32-bit int: the compiled GEMMs can take no more rows
#: or columns than this, and every backend refuses more, with the same error.
MAX_BLAS_DIM = 2**31 - 1

#: The kernels every backend exposes (besides ``run_epoch``, see ``epoch_dispatch``).
KERNEL_NAMES = (
    "dense_forward", "activation_backward", "dropout_mask", "softmax_cross_entropy",
    "logistic_cross_entropy", "squared_error", "poisson_deviance", "output_loss",
    "dense_backward",
    "inplace_l2_grad", "inplace_l1_subgradient", "l2_decay_step", "l1_prox_step", "sgd_step",
    "momentum_step", "nesterov_step", "adam_step", "penalty", "forward",
)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def check_same_dtype(kernel, **arrays):
    """Raise TypeError unless every float array given (None skipped) has one dtype.

    The kernels compute in the dtype of their arrays and never cast silently: a float64
    ``W`` passed with float32 activations is a mistake, not a request for a conversion.
    Returns that dtype (None if no float array was given).
    """
    dt = None
    first = None
    for name, a in arrays.items():
        if a is None or not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            continue
        if dt is None:
            dt, first = a.dtype, name
        elif a.dtype != dt:
            raise TypeError(f"{kernel}: {name} is {a.dtype} but {first} is {dt}; "
                            "all float arrays must have one dtype (float32 or float64)")
    return dt


def _dtype(kernel, **arrays):
    """The one float dtype of a call (see :func:`check_same_dtype`); float32 or float64."""
    dt = check_same_dtype(kernel, **arrays)
    if dt is None or dt not in _FLOATS:
        name = next(iter(arrays))
        raise TypeError(f"{kernel}: {name} must be a float32 or float64 numpy array, got "
                        f"{getattr(dt, 'name', None) or type(arrays[name]).__name__}")
    return dt


def _shape(a):
    return a.shape if isinstance(a, np.ndarray) else np.shape(a)


def _check_blas(kernel, **shapes):
    """Refuse matrix dimensions BLAS cannot take, before anything is copied."""
    for name, shape in shapes.items():
        for n in shape:
            if n > MAX_BLAS_DIM:
                raise ValueError(f"{kernel}: {name} has a dimension of {n}; the kernels' "
                                 f"GEMMs take at most 2**31 - 1 = {MAX_BLAS_DIM} rows or "
                                 "columns per call: split the call")


def _input(a, dt, name, kernel, ndim=None):
    """``a`` as a C-contiguous array of dtype ``dt`` (a copy only when needed)."""
    if a is None:
        raise TypeError(f"{kernel}: {name} must be an array, got None")
    arr = np.ascontiguousarray(a, dtype=dt)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{kernel}: {name} must be {ndim}-D, got shape {arr.shape}")
    return arr


def _expect(kernel, name, a, shape):
    if a.shape != tuple(shape):
        raise ValueError(f"{kernel}: {name} has shape {a.shape}; expected {tuple(shape)}")


class _Out:
    """A C-contiguous buffer of dtype ``dt`` standing in for output ``out``.

    ``buf`` is ``out`` itself when its layout allows; else a copy of it (so in-place
    kernels see its values), written back by :meth:`done`.
    """

    def __init__(self, out, dt, name, kernel):
        if not isinstance(out, np.ndarray):
            raise TypeError(f"{kernel}: {name} must be a numpy array, got "
                            f"{type(out).__name__}")
        if out.dtype != dt:
            raise TypeError(f"{kernel}: {name} is {out.dtype}; it must be {dt} like the "
                            "other float arrays of the call")
        if not out.flags.writeable:
            raise ValueError(f"{kernel}: {name} is read-only; it is written in place")
        self.out = out
        self.direct = out.flags.c_contiguous
        self.buf = out if self.direct else np.array(out, order="C")

    def done(self):
        if not self.direct:
            self.out[...] = self.buf
        return self.out


def _labels(y, n, k, kernel, name="y"):
    """Integer class labels as int64 of shape (n,), each in ``[0, k)``."""
    arr = np.asarray(y)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"{kernel}: {name} must hold integer class labels, got {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    _expect(kernel, name, arr, (n,))
    if n and (arr.min() < 0 or arr.max() >= k):
        raise ValueError(f"{kernel}: {name} must hold labels in [0, {k}), got labels from "
                         f"{arr.min()} to {arr.max()}")
    return arr


def _nonneg_int(v, name, kernel):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
        raise ValueError(f"{kernel}: {name} must be an integer >= 0, got {v!r}")
    return int(v)


def make_kernels(bodies, docs=None):
    """The public kernels of a backend, from its typed bodies.

    Parameters
    ----------
    bodies : mapping
        ``name -> body`` for: ``dense_forward(A, W, b, act, out)``,
        ``activation_backward(H, dA, act, out, M)``,
        ``dropout_mask(seed, layer, step, row0, keep, out)``,
        ``output_loss(out_code, Z, T, sw, out) -> float``,
        ``dense_backward(dZ, A, W, scale, dW, db, dA)``, ``inplace_l2_grad(dW, W, c)``,
        ``inplace_l1_subgradient(dW, W, c)``, ``l2_decay_step(W, dW, lr, c)``,
        ``l1_prox_step(W, threshold)``, ``sgd_step(W, g, lr)``,
        ``momentum_step(W, g, V, lr, mu)``, ``nesterov_step(W, g, V, lr, mu)``,
        ``adam_step(W, g, M, V, lr, beta1, beta2, eps, t)`` and
        ``penalty(coefs, l2, l1, div) -> float`` and
        ``forward(coefs, intercepts, act, X, out)``. Arrays arrive C-contiguous in one dtype
        with checked shapes (``M``, ``sw``, ``dA`` may be None); ``act`` and ``out_code``
        are codes of :mod:`nnopt_fast.kernels.codes`.
    docs : mapping or None
        ``name -> docstring`` of the public functions (the reference's, by default the
        bodies' own).

    Returns
    -------
    dict
        ``name -> public kernel`` for every name of :data:`KERNEL_NAMES`.
    """
    B = bodies
    K = {}

    def dense_forward(A, W, b, activation, out):
        k = "dense_forward"
        dt = _dtype(k, out=out, A=A, W=W, b=b)
        act = code(ACTIVATIONS, activation, "activation")
        _check_blas(k, A=_shape(A), W=_shape(W))
        A, W = _input(A, dt, "A", k, 2), _input(W, dt, "W", k, 2)
        if A.shape[1] != W.shape[0]:
            raise ValueError(f"{k}: A of shape {A.shape} and W of shape {W.shape} do not "
                             "chain")
        b = _input(b, dt, "b", k)
        _expect(k, "b", b, (W.shape[1],))
        o = _Out(out, dt, "out", k)
        _expect(k, "out", o.buf, (A.shape[0], W.shape[1]))
        B["dense_forward"](A, W, b, act, o.buf)
        return o.done()

    def activation_backward(H, dA, activation, out, M=None):
        k = "activation_backward"
        dt = _dtype(k, out=out, H=H, dA=dA, M=M)
        act = code(ACTIVATIONS, activation, "activation")
        H = _input(H, dt, "H", k)
        o = _Out(out, dt, "out", k)
        # dA may be out itself: then the body reads and writes one buffer.
        dA = o.buf if dA is out else _input(dA, dt, "dA", k)
        _expect(k, "dA", dA, H.shape)
        _expect(k, "out", o.buf, H.shape)
        if M is not None:
            M = _input(M, dt, "M", k)
            _expect(k, "M", M, H.shape)
        B["activation_backward"](H, dA, act, o.buf, M)
        return o.done()

    def dropout_mask(seed, layer, step, row0, keep, out):
        k = "dropout_mask"
        dt = _dtype(k, out=out)
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"{k}: seed must be an integer, got {seed!r}")
        layer, step, row0 = (_nonneg_int(v, n, k) for v, n in
                             ((layer, "layer"), (step, "step"), (row0, "row0")))
        keep = float(keep)
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"{k}: keep must be in (0, 1], got {keep!r}")
        o = _Out(out, dt, "out", k)
        if o.buf.ndim != 2:
            raise ValueError(f"{k}: out must be 2-D (n_samples, n_units), got shape "
                             f"{o.buf.shape}")
        B["dropout_mask"](int(seed) & MASK64, layer, step, row0, keep, o.buf)
        return o.done()

    def _loss(k, dt, out_code, Z, T, sw, out):
        o = _Out(out, dt, "out", k)
        Z = o.buf if Z is out else _input(Z, dt, "Z", k, 2)
        n, c = Z.shape
        _expect(k, "out", o.buf, Z.shape)
        if out_code == OUTPUTS["softmax"]:
            T = _labels(T, n, c, k)
        else:
            T = _input(T, dt, "Y", k)
            _expect(k, "Y", T, Z.shape)
        if sw is not None:
            sw = _input(sw, dt, "sw", k)
            _expect(k, "sw", sw, (n,))
        total = B["output_loss"](out_code, Z, T, sw, o.buf)
        o.done()
        return float(total)

    def softmax_cross_entropy(Z, y, sw, out):
        k = "softmax_cross_entropy"
        dt = _dtype(k, out=out, Z=Z, sw=sw)
        return _loss(k, dt, OUTPUTS["softmax"], Z, y, sw, out)

    def logistic_cross_entropy(Z, Y, sw, out):
        k = "logistic_cross_entropy"
        dt = _dtype(k, out=out, Z=Z, Y=Y, sw=sw)
        return _loss(k, dt, OUTPUTS["logistic"], Z, Y, sw, out)

    def squared_error(Z, Y, sw, out):
        k = "squared_error"
        dt = _dtype(k, out=out, Z=Z, Y=Y, sw=sw)
        return _loss(k, dt, OUTPUTS["identity"], Z, Y, sw, out)

    def poisson_deviance(Z, Y, sw, out):
        k = "poisson_deviance"
        dt = _dtype(k, out=out, Z=Z, Y=Y, sw=sw)
        return _loss(k, dt, OUTPUTS["exp"], Z, Y, sw, out)

    def output_loss(output, Z, T, sw, out):
        k = "output_loss"
        dt = _dtype(k, out=out, Z=Z, T=T, sw=sw)
        return _loss(k, dt, code(OUTPUTS, output, "output"), Z, T, sw, out)

    def dense_backward(dZ, A, W, scale, dW, db, dA=None):
        k = "dense_backward"
        dt = _dtype(k, dW=dW, dZ=dZ, A=A, W=W, db=db, dA=dA)
        _check_blas(k, dZ=_shape(dZ), A=_shape(A))
        dZ, A, W = (_input(a, dt, n, k, 2) for a, n in ((dZ, "dZ"), (A, "A"), (W, "W")))
        _expect(k, "A", A, (dZ.shape[0], W.shape[0]))
        _expect(k, "W", W, (A.shape[1], dZ.shape[1]))
        oW, ob = _Out(dW, dt, "dW", k), _Out(db, dt, "db", k)
        _expect(k, "dW", oW.buf, W.shape)
        _expect(k, "db", ob.buf, (W.shape[1],))
        oA = None
        if dA is not None:
            oA = _Out(dA, dt, "dA", k)
            _expect(k, "dA", oA.buf, A.shape)
        B["dense_backward"](dZ, A, W, float(scale), oW.buf, ob.buf,
                            None if oA is None else oA.buf)
        for o in (oW, ob, oA):
            if o is not None:
                o.done()

    def _inplace_pair(k, name_out, X, name_in, Y):
        """(written buffer of X, Y as an input of X's shape) in the call's dtype."""
        dt = _dtype(k, **{name_out: X, name_in: Y})
        o = _Out(X, dt, name_out, k)
        Y = _input(Y, dt, name_in, k)
        _expect(k, name_in, Y, o.buf.shape)
        return o, Y

    def inplace_l2_grad(dW, W, c):
        o, W = _inplace_pair("inplace_l2_grad", "dW", dW, "W", W)
        B["inplace_l2_grad"](o.buf, W, float(c))
        o.done()

    def inplace_l1_subgradient(dW, W, c):
        o, W = _inplace_pair("inplace_l1_subgradient", "dW", dW, "W", W)
        B["inplace_l1_subgradient"](o.buf, W, float(c))
        o.done()

    def l2_decay_step(W, dW, lr, c):
        o, dW = _inplace_pair("l2_decay_step", "W", W, "dW", dW)
        B["l2_decay_step"](o.buf, dW, float(lr), float(c))
        o.done()

    def l1_prox_step(W, threshold):
        k = "l1_prox_step"
        o = _Out(W, _dtype(k, W=W), "W", k)
        B["l1_prox_step"](o.buf, float(threshold))
        o.done()

    def _step(k, body, W, g, state, *scalars):
        """An optimizer step: W and the named state arrays in place, g read."""
        dt = _dtype(k, W=W, g=g, **state)
        o = _Out(W, dt, "W", k)
        g = _input(g, dt, "g", k)
        _expect(k, "g", g, o.buf.shape)
        outs = []
        for name, a in state.items():
            s = _Out(a, dt, name, k)
            _expect(k, name, s.buf, o.buf.shape)
            outs.append(s)
        body(o.buf, g, *(s.buf for s in outs), *scalars)
        for s in (o, *outs):
            s.done()

    def sgd_step(W, g, lr):
        _step("sgd_step", B["sgd_step"], W, g, {}, float(lr))

    def momentum_step(W, g, V, lr, mu):
        _step("momentum_step", B["momentum_step"], W, g, {"V": V}, float(lr), float(mu))

    def nesterov_step(W, g, V, lr, mu):
        _step("nesterov_step", B["nesterov_step"], W, g, {"V": V}, float(lr), float(mu))

    def adam_step(W, g, M, V, lr, beta1, beta2, eps, t):
        if not isinstance(t, (int, np.integer)) or isinstance(t, bool) or t < 1:
            raise ValueError(f"adam_step: t must be an integer >= 1, got {t!r}")
        _step("adam_step", B["adam_step"], W, g, {"M": M, "V": V}, float(lr), float(beta1),
              float(beta2), float(eps), int(t))

    def penalty(coefs, l2, l1, div):
        k = "penalty"
        div = float(div)
        if not div > 0.0:
            raise ValueError(f"{k}: div must be > 0, got {div!r}")
        arrays = list(coefs)
        dt = _dtype(k, **{f"coefs[{i}]": W for i, W in enumerate(arrays)}) if arrays else None
        arrays = [_input(W, dt, f"coefs[{i}]", k) for i, W in enumerate(arrays)]
        return float(B["penalty"](arrays, float(l2), float(l1), div))

    def forward(coefs, intercepts, activation, X, out):
        k = "forward"
        coefs, intercepts = list(coefs), list(intercepts)
        if not coefs or len(coefs) != len(intercepts):
            raise ValueError(f"{k}: coefs and intercepts must be non-empty lists of one "
                             "length")
        named = {f"coefs[{i}]": W for i, W in enumerate(coefs)}
        named.update({f"intercepts[{i}]": b for i, b in enumerate(intercepts)})
        dt = _dtype(k, out=out, X=X, **named)
        act = code(ACTIVATIONS, activation, "activation")
        _check_blas(k, X=_shape(X))
        X = _input(X, dt, "X", k, 2)
        width = X.shape[1]
        for i, (W, b) in enumerate(zip(coefs, intercepts)):
            coefs[i] = W = _input(W, dt, f"coefs[{i}]", k, 2)
            intercepts[i] = b = _input(b, dt, f"intercepts[{i}]", k)
            if W.shape[0] != width:
                raise ValueError(f"{k}: coefs[{i}] has shape {W.shape}; its layer takes "
                                 f"{width} inputs")
            _expect(k, f"intercepts[{i}]", b, (W.shape[1],))
            width = W.shape[1]
        o = _Out(out, dt, "out", k)
        _expect(k, "out", o.buf, (X.shape[0], width))
        B["forward"](coefs, intercepts, act, X, o.buf)
        return o.done()

    for fn in (dense_forward, activation_backward, dropout_mask, softmax_cross_entropy,
               logistic_cross_entropy, squared_error, poisson_deviance, output_loss,
               dense_backward,
               inplace_l2_grad, inplace_l1_subgradient, l2_decay_step, l1_prox_step,
               sgd_step, momentum_step, nesterov_step, adam_step, penalty, forward):
        K[fn.__name__] = fn
    for name, fn in K.items():
        source = (docs or {}).get(name) or getattr(B.get(name), "__doc__", None)
        fn.__doc__ = source
    assert set(K) == set(KERNEL_NAMES)
    return K

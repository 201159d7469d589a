"""Kernel parity: every kernel x compiled backend x dtype x shape against the NumPy reference."""

import copy
import functools
import os
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast.kernels import get_backend
from nnopt_fast.kernels import reference as ref
from tolerances import ACTIVATION_ATOL, LOSS_RTOL, PENALTY_RTOL, kernel_rtol

#: Development only: turn a missing compiled backend into a skip instead of a failure.
#: CI installs all three backends, so there a missing one must fail loudly.
ALLOW_MISSING = os.environ.get("NNOPT_ALLOW_MISSING_BACKENDS") == "1"

COMPILED = ("cython", "numba")
DTYPES = (np.float32, np.float64)
#: (n_rows, n_cols) of each case; GEMM kernels add an inner dimension from INNER.
SHAPES = {"1x1": (1, 1), "0x13": (0, 13), "7x13": (7, 13), "257x1031": (257, 1031)}
#: Inner (reduction) dimension of the GEMM kernels per shape, small enough that the
#: 257 x 1031 case stays fast, large enough (65) to exercise BLAS blocking.
INNER = {(1, 1): 1, (0, 13): 5, (7, 13): 11, (257, 1031): 65}
#: "Large" magnitudes of the extreme cases: tanh/logistic saturate long before 30;
#: relu/identity/softmax must stay exact or max-shifted at 1e4.
BIG_SATURATING = 30.0
BIG_LINEAR = 1e4
SEED = 20261126


@functools.lru_cache(maxsize=None)
def _availability():
    # Availability cannot change within a process; asking once saves ~10 ms a test.
    return nf.backends()


def require_backend(name):
    """The backend module, or a test failure that quotes ``nf.backends()``'s reason."""
    info = _availability()[name]
    if not info["available"]:
        msg = f"backend {name!r} is not available: {info['reason']}"
        if ALLOW_MISSING:
            pytest.skip(msg)
        pytest.fail(msg)
    return get_backend(name)


# ---------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------
@dataclass
class Case:
    """One call of a kernel: positional arguments and how to judge the results.

    ``scale[name]`` is the natural magnitude of each written argument (same shape) or of
    the returned value (``"return"``); the allowed error is
    ``rtol * scale + atol[name]``. ``exact_zeros`` names outputs whose zero pattern must
    match exactly (proximal L1, dropout masks).
    """

    names: list
    args: list
    written: tuple
    scale: dict
    atol: dict = field(default_factory=dict)
    exact_zeros: tuple = ()
    loss_rtol: bool = False


def _values(rng, shape, dtype, values, big):
    """N(0, 1) entries; the "extreme" set makes ~1/4 exact zeros and ~1/4 +-big."""
    x = rng.standard_normal(shape)
    if values == "extreme" and x.size:
        u = rng.random(shape)
        x[u < 0.25] = 0.0
        hi = u > 0.75
        x[hi] = np.where(x[hi] < 0, -big, big)
    return x.astype(dtype)


def _garbage(shape, dtype):
    """An output buffer full of NaN, so an element a kernel forgets to write shows up."""
    return np.full(shape, np.nan, dtype=dtype)


def _abs(x):
    return np.abs(np.asarray(x, dtype=np.float64))


def _big(activation):
    return BIG_SATURATING if activation in ("tanh", "logistic") else BIG_LINEAR


def build_dense_forward(rng, dtype, shape, variant):
    act, values = variant
    r, c = shape
    k = INNER[shape]
    A = _values(rng, (r, k), dtype, values, _big(act))
    W = (_values(rng, (k, c), dtype, "extreme" if values == "extreme" else "normal", 1.0)
         / np.sqrt(k)).astype(dtype)
    b = _values(rng, (c,), dtype, values, _big(act))
    out = _garbage((r, c), dtype)
    # Every activation here is 1-Lipschitz, so the GEMM's error bound carries over.
    scale = _abs(A) @ _abs(W) + _abs(b)
    return Case(["A", "W", "b", "activation", "out"], [A, W, b, act, out], ("out",),
                {"out": scale}, {"out": ACTIVATION_ATOL[np.dtype(dtype)]
                                 if act in ("tanh", "logistic") else 0.0})


def build_activation_backward(rng, dtype, shape, variant):
    act, mask, values = variant
    Z = _values(rng, shape, dtype, values, _big(act))
    H = ref.activate(Z.copy(), act).astype(dtype)
    dA = _values(rng, shape, dtype, values, BIG_LINEAR)
    M = None
    if mask != "none":
        M = ref.dropout_mask(7, 1, 3, 0, 0.75, np.empty(shape, dtype))
    out = dA if mask == "mask+alias" else _garbage(shape, dtype)
    # |g'(H)| <= 1 for all four activations.
    scale = _abs(dA) * (1.0 if M is None else _abs(M))
    # Aliased, ``dA`` and ``out`` are one buffer: both names are written.
    written = ("out", "dA") if mask == "mask+alias" else ("out",)
    return Case(["H", "dA", "activation", "out", "M"], [H, dA, act, out, M], written,
                {"out": scale, "dA": scale})


DROPOUT_VARIANTS = {
    "plain": (0, 1, 0, 0, 0.8),
    "big-seed-step-row0": (2**63 - 1, 3, 123_456_789, 1000, 0.5),
    "max-seed": (2**64 - 1, 2, 7, 3, 0.9),
    "keep-all": (12345, 1, 1, 0, 1.0),
    "keep-few": (99, 4, 2, 17, 0.01),
}


def build_dropout_mask(rng, dtype, shape, variant):
    seed, layer, step, row0, keep = DROPOUT_VARIANTS[variant]
    out = _garbage(shape, dtype)
    return Case(["seed", "layer", "step", "row0", "keep", "out"],
                [seed, layer, step, row0, keep, out], ("out",),
                {"out": np.full(shape, 1.0 / keep)}, exact_zeros=("out",))


def _sample_weight(rng, n, dtype, sw):
    if sw == "none":
        return None
    w = rng.uniform(0.0, 3.0, n)
    w[::3] = 0.0  # zero weights must remove a sample exactly
    return w.astype(dtype)


def _loss_case(Z, T, sw, out, alias, grad_scale, loss_scale):
    # Aliased, ``Z`` and ``out`` are one buffer: both names are written.
    written = ("out", "Z") if alias else ("out",)
    scale = {"out": grad_scale, "Z": grad_scale, "return": loss_scale}
    return Case(["Z", "T", "sw", "out"], [Z, T, sw, out], written, scale, loss_rtol=True)


def build_softmax_cross_entropy(rng, dtype, shape, variant):
    sw_kind, values, alias = variant
    r, c = shape
    Z = _values(rng, shape, dtype, values, BIG_LINEAR)
    y = rng.integers(0, c, r).astype(np.int64)
    sw = _sample_weight(rng, r, dtype, sw_kind)
    w = np.ones(r) if sw is None else _abs(sw)
    out = Z if alias == "out=Z" else _garbage(shape, dtype)
    # The clipped probability bounds each sample's loss by -log(eps).
    lmax = -np.log(np.finfo(dtype).eps)
    return _loss_case(Z, y, sw, out, alias == "out=Z", np.broadcast_to(w[:, None], shape),
                      float((w * (1.0 + lmax)).sum()))


def build_logistic_cross_entropy(rng, dtype, shape, variant):
    sw_kind, values, alias = variant
    r, c = shape
    Z = _values(rng, shape, dtype, values, BIG_SATURATING if values == "normal" else BIG_LINEAR)
    Y = (rng.random(shape) < 0.4).astype(dtype)
    sw = _sample_weight(rng, r, dtype, sw_kind)
    w = np.ones(r) if sw is None else _abs(sw)
    out = Z if alias == "out=Z" else _garbage(shape, dtype)
    lmax = -np.log(np.finfo(dtype).eps)
    return _loss_case(Z, Y, sw, out, alias == "out=Z", np.broadcast_to(w[:, None], shape),
                      float((w * c * (1.0 + lmax)).sum()))


def build_squared_error(rng, dtype, shape, variant):
    sw_kind, values, alias = variant
    r, _ = shape
    Z = _values(rng, shape, dtype, values, BIG_LINEAR)
    Y = _values(rng, shape, dtype, values, BIG_LINEAR)
    sw = _sample_weight(rng, r, dtype, sw_kind)
    w = np.ones(r) if sw is None else _abs(sw)
    out = Z if alias == "out=Z" else _garbage(shape, dtype)
    mag = _abs(Z) + _abs(Y)
    return _loss_case(Z, Y, sw, out, alias == "out=Z", mag * w[:, None],
                      float((w * (1.0 + 0.5 * (mag**2).sum(axis=1))).sum()))


def build_poisson_deviance(rng, dtype, shape, variant):
    sw_kind, values, alias = variant
    r, _ = shape
    # exp(Z) must stay finite in float32: |Z| <= 30 in the extreme cases.
    Z = _values(rng, shape, dtype, values, BIG_SATURATING)
    Y = rng.poisson(2.0, shape).astype(dtype)
    sw = _sample_weight(rng, r, dtype, sw_kind)
    w = np.ones(r) if sw is None else _abs(sw)
    out = Z if alias == "out=Z" else _garbage(shape, dtype)
    P = np.exp(_abs(Z))
    mag = P + _abs(Y)
    ylogy = np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1.0)), 0.0).astype(np.float64)
    per_row = (ylogy + _abs(Y) * _abs(Z) + _abs(Y) + P).sum(axis=1)
    return _loss_case(Z, Y, sw, out, alias == "out=Z", mag * w[:, None],
                      float((w * (1.0 + per_row)).sum()))


def build_dense_backward(rng, dtype, shape, variant):
    with_dA, values, s = variant
    r, c = shape
    k = INNER[shape]
    dZ = _values(rng, (r, c), dtype, values, BIG_LINEAR)
    A = _values(rng, (r, k), dtype, values, BIG_SATURATING)
    W = _values(rng, (k, c), dtype, values, 1.0)
    scale = 1.0 / max(r, 1) if s == "1/n" else 0.37
    dW, db = _garbage((k, c), dtype), _garbage((c,), dtype)
    names = ["dZ", "A", "W", "scale", "dW", "db"]
    args = [dZ, A, W, scale, dW, db]
    scales = {"dW": scale * (_abs(A).T @ _abs(dZ)), "db": scale * _abs(dZ).sum(axis=0)}
    written = ("dW", "db")
    if with_dA == "dA":
        names.append("dA")
        args.append(_garbage((r, k), dtype))
        scales["dA"] = _abs(dZ) @ _abs(W).T
        written += ("dA",)
    return Case(names, args, written, scales)


def build_inplace_l2_grad(rng, dtype, shape, variant):
    values, c = variant, 0.3
    dW = _values(rng, shape, dtype, values, BIG_LINEAR)
    W = _values(rng, shape, dtype, values, BIG_LINEAR)
    return Case(["dW", "W", "c"], [dW, W, c], ("dW",), {"dW": _abs(dW) + c * _abs(W)})


def build_inplace_l1_subgradient(rng, dtype, shape, variant):
    values, c = variant, 0.3
    dW = _values(rng, shape, dtype, values, BIG_LINEAR)
    W = _values(rng, shape, dtype, values, BIG_LINEAR)
    return Case(["dW", "W", "c"], [dW, W, c], ("dW",), {"dW": _abs(dW) + c})


def build_l2_decay_step(rng, dtype, shape, variant):
    values, lr, c = variant, 0.05, 2e-3
    W = _values(rng, shape, dtype, values, BIG_LINEAR)
    dW = _values(rng, shape, dtype, values, BIG_LINEAR)
    return Case(["W", "dW", "lr", "c"], [W, dW, lr, c], ("W",),
                {"W": _abs(W) + lr * (_abs(dW) + c * _abs(W))})


def build_l1_prox_step(rng, dtype, shape, variant):
    values, threshold = variant, 0.4
    W = _values(rng, shape, dtype, values, BIG_LINEAR)
    if W.size >= 4:
        # Values exactly at and just inside the threshold must become exact zeros.
        flat = W.reshape(-1)
        flat[:4] = np.array([threshold, -threshold, 0.5 * threshold, -0.0], dtype=dtype)
    return Case(["W", "threshold"], [W, threshold], ("W",), {"W": _abs(W) + threshold},
                exact_zeros=("W",))


def _flat(rng, shape, dtype, values):
    """Optimizer steps run on the flat parameter buffer: a 1-D array of r * c entries."""
    return _values(rng, (shape[0] * shape[1],), dtype, values, BIG_LINEAR)


def build_sgd_step(rng, dtype, shape, variant):
    values, lr = variant, 0.05
    W, g = _flat(rng, shape, dtype, values), _flat(rng, shape, dtype, values)
    return Case(["W", "g", "lr"], [W, g, lr], ("W",), {"W": _abs(W) + lr * _abs(g)})


def build_momentum_step(rng, dtype, shape, variant):
    values, lr, mu = variant, 0.05, 0.9
    W, g, V = (_flat(rng, shape, dtype, values) for _ in range(3))
    sv = mu * _abs(V) + lr * _abs(g)
    return Case(["W", "g", "V", "lr", "mu"], [W, g, V, lr, mu], ("W", "V"),
                {"W": _abs(W) + sv, "V": sv})


def build_nesterov_step(rng, dtype, shape, variant):
    values, lr, mu = variant, 0.05, 0.9
    W, g, V = (_flat(rng, shape, dtype, values) for _ in range(3))
    sv = mu * _abs(V) + lr * _abs(g)
    return Case(["W", "g", "V", "lr", "mu"], [W, g, V, lr, mu], ("W", "V"),
                {"W": _abs(W) + mu * sv + lr * _abs(g), "V": sv})


def build_adam_step(rng, dtype, shape, variant):
    values, t = variant
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    W, g, M = (_flat(rng, shape, dtype, values) for _ in range(3))
    V = np.abs(_flat(rng, shape, dtype, values))
    sm = b1 * _abs(M) + (1 - b1) * _abs(g)
    sv = b2 * _abs(V) + (1 - b2) * _abs(g) ** 2
    lr_t = lr * np.sqrt(1.0 - b2**t) / (1.0 - b1**t)
    return Case(["W", "g", "M", "V", "lr", "beta1", "beta2", "eps", "t"],
                [W, g, M, V, lr, b1, b2, eps, t], ("W", "M", "V"),
                {"W": _abs(W) + lr_t * sm / (np.sqrt(sv) + eps), "M": sm, "V": sv})


def build_forward(rng, dtype, shape, variant):
    act, values = variant
    r, c = shape
    k, h = INNER[shape], 9
    X = _values(rng, (r, k), dtype, values, _big(act))
    W1 = (_values(rng, (k, h), dtype, "normal", 1.0) / np.sqrt(k)).astype(dtype)
    b1 = _values(rng, (h,), dtype, values, _big(act))
    W2 = (_values(rng, (h, c), dtype, "normal", 1.0) / np.sqrt(h)).astype(dtype)
    b2 = _values(rng, (c,), dtype, "normal", 1.0)
    out = _garbage((r, c), dtype)
    # Every activation is 1-Lipschitz with |g(z)| <= |z| + 1: propagate magnitudes.
    s1 = _abs(X) @ _abs(W1) + _abs(b1)
    scale = (s1 + 1.0) @ _abs(W2) + _abs(b2)
    atol = (ACTIVATION_ATOL[np.dtype(dtype)] * _abs(W2).sum(axis=0)
            if act in ("tanh", "logistic") else 0.0)
    return Case(["coefs", "intercepts", "activation", "X", "out"],
                [[W1, W2], [b1, b2], act, X, out], ("out",), {"out": scale},
                {"out": np.broadcast_to(atol, (r, c)) if np.ndim(atol) else atol})


PENALTY_VARIANTS = {"l2": (0.3, 0.0), "l1": (0.0, 0.7), "l2+l1": (0.3, 0.7), "none": (0.0, 0.0)}


def build_penalty(rng, dtype, shape, variant):
    l2, l1 = PENALTY_VARIANTS[variant]
    coefs = [_values(rng, shape, dtype, "extreme", BIG_SATURATING),
             _values(rng, (shape[1], 3), dtype, "normal", 1.0)]
    div = 40.0
    total = sum(0.5 * l2 * (_abs(W) ** 2).sum() + 0.5 * l1 * _abs(W).sum() for W in coefs)
    return Case(["coefs", "l2", "l1", "div"], [coefs, l2, l1, div], (),
                {"return": total / div})


# ---------------------------------------------------------------------------
# bad inputs: each family's calls that the reference rejects
# ---------------------------------------------------------------------------
def _ok(rng, dtype):
    """Well-formed 7 x 13 arrays to break one at a time."""
    r, c, k = 7, 13, 11
    return {
        "A": rng.standard_normal((r, k)).astype(dtype),
        "W": rng.standard_normal((k, c)).astype(dtype),
        "b": rng.standard_normal(c).astype(dtype),
        "Z": rng.standard_normal((r, c)).astype(dtype),
        "out": np.zeros((r, c), dtype),
        "y": rng.integers(0, c, r).astype(np.int64),
        "Y": (rng.random((r, c)) < 0.5).astype(dtype),
        "g": rng.standard_normal(r * c).astype(dtype),
        "P": rng.standard_normal(r * c).astype(dtype),
        "dW": np.zeros((k, c), dtype),
        "db": np.zeros(c, dtype),
    }


def _other(dtype):
    return np.float64 if np.dtype(dtype) == np.float32 else np.float32


def bad_gemm(rng, dtype):
    o = _ok(rng, dtype)
    r, c, k = 7, 13, 11
    yield "dense_forward", "inner-dim", (o["A"], o["W"][:-1], o["b"], "tanh", o["out"])
    wide = np.zeros((r, c + 1), dtype)
    yield "dense_forward", "out-shape", (o["A"], o["W"], o["b"], "tanh", wide)
    yield "dense_forward", "unknown-activation", (o["A"], o["W"], o["b"], "softplus", o["out"])
    yield "dense_backward", "rows-mismatch", (o["Z"], o["A"][:-1], o["W"], 1.0, o["dW"], o["db"])
    yield "dense_backward", "dW-shape", (o["Z"], o["A"], o["W"], 1.0, np.zeros((k + 1, c), dtype),
                                         o["db"])


def bad_activation(rng, dtype):
    o = _ok(rng, dtype)
    H = np.tanh(o["Z"])
    yield "activation_backward", "dA-shape", (H, o["Z"][:, :-1].copy(), "tanh", o["out"])
    yield "activation_backward", "unknown-activation", (H, o["Z"], "softplus", o["out"])


def bad_dropout(rng, dtype):
    yield "dropout_mask", "out-1d", (1, 1, 0, 0, 0.5, np.zeros(13, dtype))
    yield "dropout_mask", "keep-0", (1, 1, 0, 0, 0.0, np.zeros((7, 13), dtype))


def bad_loss(rng, dtype):
    o = _ok(rng, dtype)
    r, c = 7, 13
    yield "softmax_cross_entropy", "y-length", (o["Z"], np.zeros(r + 1, np.int64), None, o["out"])
    yield "softmax_cross_entropy", "out-shape", (o["Z"], o["y"], None, np.zeros((r, c + 1), dtype))
    yield "logistic_cross_entropy", "Y-shape", (o["Z"], o["Y"][:, :-1].copy(), None, o["out"])
    yield "squared_error", "Y-shape", (o["Z"], o["Z"][:, :-1].copy(), None, o["out"])


def bad_update(rng, dtype):
    o = _ok(rng, dtype)
    n = o["P"].size
    short = np.zeros(n - 1, dtype)
    yield "sgd_step", "g-length", (o["P"], short, 0.1)
    yield "momentum_step", "V-length", (o["P"], o["g"], short, 0.1, 0.9)
    yield "nesterov_step", "g-length", (o["P"], short, np.zeros(n, dtype), 0.1, 0.9)
    yield "adam_step", "V-length", (o["P"], o["g"], np.zeros(n, dtype), short, 1e-3, 0.9, 0.999,
                                    1e-8, 1)
    yield "inplace_l2_grad", "W-shape", (o["dW"], o["W"][:, :-1].copy(), 0.1)
    yield "inplace_l1_subgradient", "W-shape", (o["dW"], o["W"][:, :-1].copy(), 0.1)
    yield "l2_decay_step", "dW-shape", (o["W"], o["dW"][:, :-1].copy(), 0.1, 0.01)


def bad_reduce(rng, dtype):
    o = _ok(rng, dtype)
    yield "penalty", "div-0", ([o["W"]], 0.5, 0.5, 0.0)


def bad_dtype_mix(rng, dtype):
    """Float arrays of two dtypes in one call: every kernel raises TypeError, no cast."""
    o = _ok(rng, dtype)
    x = _other(dtype)
    yield "dense_forward", "W-dtype", (o["A"], o["W"].astype(x), o["b"], "tanh", o["out"])
    yield "dense_forward", "out-dtype", (o["A"], o["W"], o["b"], "tanh", o["out"].astype(x))
    yield "sgd_step", "g-dtype", (o["P"], o["g"].astype(x), 0.1)
    yield "momentum_step", "V-dtype", (o["P"], o["g"], o["g"].astype(x), 0.1, 0.9)
    yield "adam_step", "M-dtype", (o["P"], o["g"], o["g"].astype(x), o["g"] ** 2, 0.1, 0.9,
                                   0.999, 1e-8, 1)
    yield "inplace_l2_grad", "W-dtype", (o["dW"], o["W"].astype(x), 0.1)
    yield "softmax_cross_entropy", "out-dtype", (o["Z"], o["y"], None, o["out"].astype(x))
    yield "softmax_cross_entropy", "sw-dtype", (o["Z"], o["y"], np.ones(len(o["Z"]), x),
                                                o["out"])


def bad_labels(rng, dtype):
    """Class labels outside [0, n_classes), or not integers."""
    o = _ok(rng, dtype)
    y = o["y"].copy()
    y[2] = 99
    yield "softmax_cross_entropy", "label-99", (o["Z"], y, None, o["out"])
    y = o["y"].copy()
    y[0] = -1
    yield "softmax_cross_entropy", "label-negative", (o["Z"], y, None, o["out"])
    yield "output_loss", "label-99", ("softmax", o["Z"], np.full(7, 13, np.int64), None,
                                      o["out"])
    yield "softmax_cross_entropy", "float-labels", (o["Z"], o["y"].astype(np.float64), None,
                                                    o["out"])


def _huge_rows(n_cols, dtype):
    """A read-only view of 2**31 + 16 rows that allocates nothing (zero strides)."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape=(2**31 + 16, n_cols),
                                           strides=(0, 0), writeable=False)


def bad_blas_limit(rng, dtype):
    """More rows than BLAS's 32-bit int: refused from the shapes, before any copy."""
    o = _ok(rng, dtype)
    big = _huge_rows(11, dtype)
    yield "dense_forward", "rows-2**31", (big, o["W"], o["b"], "tanh", _huge_rows(13, dtype))
    yield "dense_backward", "rows-2**31", (_huge_rows(13, dtype), big, o["W"], 1.0, o["dW"],
                                           o["db"])
    yield "forward", "rows-2**31", ([o["W"]], [o["b"]], "tanh", big, _huge_rows(13, dtype))


def bad_outputs(rng, dtype):
    """Outputs the kernels cannot write: read-only, or not a float array of the call's dtype."""
    o = _ok(rng, dtype)
    ro = o["out"].copy()
    ro.setflags(write=False)
    yield "dense_forward", "out-read-only", (o["A"], o["W"], o["b"], "tanh", ro)
    yield "dense_forward", "out-int", (o["A"], o["W"], o["b"], "tanh",
                                       np.zeros((7, 13), np.int64))
    yield "sgd_step", "W-list", (list(o["P"]), o["g"], 0.1)
    yield "forward", "chain", ([o["W"], o["W"]], [o["b"], o["b"]], "tanh", o["A"], o["out"])
    yield "forward", "intercept-shape", ([o["W"]], [o["b"][:-1]], "tanh", o["A"], o["out"])
    yield "adam_step", "t-0", (o["P"], o["g"], np.zeros_like(o["g"]), np.zeros_like(o["g"]),
                               1e-3, 0.9, 0.999, 1e-8, 0)


# ---------------------------------------------------------------------------
# the registry: one row per kernel
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class KernelSpec:
    """A kernel of the reference, its case builder, and the variants it is run with."""

    name: str
    build: object
    variants: tuple
    family: str


ACTS = tuple(ref.ACTIVATIONS)
VALUES = ("normal", "extreme")
LOSS_VARIANTS = tuple((sw, v, a) for sw in ("none", "sw") for v in VALUES
                      for a in ("out", "out=Z"))

KERNELS = (
    KernelSpec("dense_forward", build_dense_forward,
               tuple((a, v) for a in ACTS for v in VALUES), "gemm"),
    KernelSpec("dense_backward", build_dense_backward,
               (("dA", "normal", "1/n"), ("dA", "extreme", "0.37"), ("no-dA", "normal", "0.37"),
                ("no-dA", "extreme", "1/n")), "gemm"),
    KernelSpec("activation_backward", build_activation_backward,
               tuple((a, m, v) for a in ACTS for m in ("none", "mask", "mask+alias")
                     for v in VALUES), "activation"),
    KernelSpec("dropout_mask", build_dropout_mask, tuple(DROPOUT_VARIANTS), "dropout"),
    KernelSpec("softmax_cross_entropy", build_softmax_cross_entropy, LOSS_VARIANTS, "loss"),
    KernelSpec("logistic_cross_entropy", build_logistic_cross_entropy, LOSS_VARIANTS, "loss"),
    KernelSpec("squared_error", build_squared_error, LOSS_VARIANTS, "loss"),
    KernelSpec("poisson_deviance", build_poisson_deviance, LOSS_VARIANTS, "loss"),
    KernelSpec("inplace_l2_grad", build_inplace_l2_grad, VALUES, "update"),
    KernelSpec("inplace_l1_subgradient", build_inplace_l1_subgradient, VALUES, "update"),
    KernelSpec("l2_decay_step", build_l2_decay_step, VALUES, "update"),
    KernelSpec("l1_prox_step", build_l1_prox_step, VALUES, "update"),
    KernelSpec("sgd_step", build_sgd_step, VALUES, "update"),
    KernelSpec("momentum_step", build_momentum_step, VALUES, "update"),
    KernelSpec("nesterov_step", build_nesterov_step, VALUES, "update"),
    KernelSpec("adam_step", build_adam_step, tuple((v, t) for v in VALUES for t in (1, 7)),
               "update"),
    KernelSpec("penalty", build_penalty, tuple(PENALTY_VARIANTS), "reduce"),
    KernelSpec("forward", build_forward, tuple((a, v) for a in ACTS for v in VALUES), "gemm"),
)

BAD_INPUTS = (bad_gemm, bad_activation, bad_dropout, bad_loss, bad_update, bad_reduce,
              bad_dtype_mix, bad_labels, bad_blas_limit, bad_outputs)


def _variant_id(v):
    return "-".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _parity_params():
    for spec in KERNELS:
        for v in spec.variants:
            for sname, shape in SHAPES.items():
                for dt in DTYPES:
                    for be in COMPILED:
                        name = f"{spec.name}-{_variant_id(v)}-{sname}-{np.dtype(dt).name}"
                        yield pytest.param(spec, v, shape, dt, be, id=f"{name}-{be}")


def _bad_params(makers):
    for make in makers:
        for dt in DTYPES:
            for kernel, label, _ in make(np.random.default_rng(0), dt):
                yield kernel, label, make, dt


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------
def _snapshot(case):
    """Bytes of every array argument the kernel must leave alone."""
    snap = {}
    for name, a in zip(case.names, case.args):
        if name in case.written:
            continue
        if isinstance(a, np.ndarray):
            snap[name] = (a.dtype, a.shape, a.tobytes())
        elif isinstance(a, list):
            snap[name] = [(w.dtype, w.shape, w.tobytes()) for w in a]
    return snap


def _assert_close(what, got, want, scale, rtol, atol):
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != reference {want.shape}"
    g64, w64 = got.astype(np.float64), want.astype(np.float64)
    both_nonfinite = ~np.isfinite(w64) & ((g64 == w64) | (np.isnan(g64) & np.isnan(w64)))
    err = np.abs(g64 - w64)
    bound = rtol * np.asarray(scale, dtype=np.float64) + atol
    bad = ~((err <= bound) | both_nonfinite)
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err - bound, -np.inf)), bad.shape) \
            if bad.ndim else ()
        pytest.fail(f"{what}: {int(bad.sum())} of {bad.size} entries off; worst at {i}: "
                    f"got {g64[i]!r}, reference {w64[i]!r}, allowed error {bound[i]!r}"
                    if np.ndim(bound) else
                    f"{what}: got {g64[i]!r}, reference {w64[i]!r}, allowed error {bound!r}")


def _check_unchanged(case, snap, who):
    for name, a in zip(case.names, case.args):
        if name not in snap:
            continue
        now = ([(w.dtype, w.shape, w.tobytes()) for w in a] if isinstance(a, list)
               else (a.dtype, a.shape, a.tobytes()))
        assert now == snap[name], f"{who} modified input {name!r}, which is not in-place"


@functools.lru_cache(maxsize=2)
def _reference_run(spec, variant, shape, dtype_name):
    """Build a case and run the reference on it, once for both compiled backends.

    Returns the case (its arguments now hold the reference's outputs), a pristine copy
    of the arguments for a backend to run on, and the reference's return value. The
    backend loop is innermost in the parametrization, so two entries suffice.
    """
    case = spec.build(np.random.default_rng(SEED), np.dtype(dtype_name), shape, variant)
    pristine = copy.deepcopy(case.args)
    snap = _snapshot(case)
    want = getattr(ref, spec.name)(*case.args)
    _check_unchanged(case, snap, "the reference")
    return case, pristine, want


@pytest.mark.parametrize("spec, variant, shape, dtype, backend", list(_parity_params()))
def test_kernel_matches_reference(spec, variant, shape, dtype, backend):
    be = require_backend(backend)
    fn = getattr(be, spec.name, None)
    assert fn is not None, f"backend {backend!r} has no kernel {spec.name!r}"
    dt = np.dtype(dtype)
    want_case, pristine, want = _reference_run(spec, variant, shape, dt.name)
    # deepcopy keeps aliasing (``out`` passed as ``dA``) inside one argument list.
    got_case = replace(want_case, args=copy.deepcopy(pristine))
    got_snap = _snapshot(got_case)
    got = fn(*got_case.args)
    _check_unchanged(got_case, got_snap, backend)
    rtol = kernel_rtol(dt)
    for i, name in enumerate(got_case.names):
        if name not in got_case.written:
            continue
        g, w = got_case.args[i], want_case.args[i]
        assert g.dtype == dt, f"{name} changed dtype to {g.dtype}"
        _assert_close(f"{spec.name} output {name!r}", g, w, got_case.scale[name], rtol,
                      got_case.atol.get(name, 0.0))
        if name in got_case.exact_zeros:
            np.testing.assert_array_equal(g == 0, w == 0,
                                          err_msg=f"{name}: zero pattern differs")
    if isinstance(want, np.ndarray):
        # The reference returns its ``out`` argument: the backend must return its own.
        out = got_case.args[got_case.names.index(got_case.written[0])]
        assert isinstance(got, np.ndarray), f"reference returns an array, {backend} {type(got)}"
        assert got.dtype == dt, f"returned dtype {got.dtype} != input dtype {dt}"
        np.testing.assert_array_equal(got, out, err_msg="returned array is not the output")
    elif want is None:
        assert got is None, f"reference returns None, {backend} returns {type(got).__name__}"
    else:
        assert isinstance(got, float), f"{spec.name} returned {type(got).__name__}, not float"
        r = LOSS_RTOL[dt] if got_case.loss_rtol else PENALTY_RTOL
        _assert_close(f"{spec.name} value", got, want, got_case.scale["return"], r, 0.0)


def _raises(fn, args):
    try:
        fn(*args)
    except Exception as exc:  # any exception counts: the contract is "rejects"
        return exc
    return None


@pytest.mark.parametrize("kernel, label, make, dtype", [
    pytest.param(k, lab, mk, dt, id=f"{k}-{lab}-{np.dtype(dt).name}")
    for k, lab, mk, dt in _bad_params(BAD_INPUTS)])
@pytest.mark.parametrize("backend", COMPILED)
def test_bad_input_raises_on_both_sides(kernel, label, make, dtype, backend):
    be = require_backend(backend)
    args_ref = dict(((k, lab), a) for k, lab, a in make(np.random.default_rng(0), dtype))
    args_be = dict(((k, lab), a) for k, lab, a in make(np.random.default_rng(0), dtype))
    exc_ref = _raises(getattr(ref, kernel), args_ref[kernel, label])
    assert exc_ref is not None, f"reference accepted bad input {label!r} to {kernel}"
    exc_be = _raises(getattr(be, kernel), args_be[kernel, label])
    assert exc_be is not None, (f"{backend}.{kernel} accepted bad input {label!r} "
                                f"that the reference rejects ({type(exc_ref).__name__}: {exc_ref})")
    # One dispatcher validates every backend: the same error, word for word.
    assert (type(exc_be), str(exc_be)) == (type(exc_ref), str(exc_ref))


@pytest.mark.parametrize("kernel, label, make, dtype", [
    pytest.param(k, lab, mk, dt, id=f"{k}-{lab}-{np.dtype(dt).name}")
    for k, lab, mk, dt in _bad_params((bad_dtype_mix,))])
@pytest.mark.parametrize("backend", ("numpy",) + COMPILED)
def test_mixed_float_dtypes_raise_type_error_naming_the_array(kernel, label, make, dtype,
                                                               backend):
    be = ref if backend == "numpy" else require_backend(backend)
    args = dict(((k, lab), a) for k, lab, a in make(np.random.default_rng(0), dtype))
    with pytest.raises(TypeError, match=label.split("-")[0] + " is float"):
        getattr(be, kernel)(*args[kernel, label])


@pytest.mark.parametrize("activation", ["tanh", "logistic"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("backend", COMPILED)
def test_activation_error_bound_on_a_dense_grid(backend, dtype, activation):
    """A backend's tanh / logistic stays within ACTIVATION_ATOL of NumPy's everywhere.

    Random cases rarely land where a rational approximation is worst (the knee around
    |x| ~ 2-9); a grid of 400,001 points over [-40, 40] plus +-0, tiny and huge values does.
    Through ``dense_forward`` with a 1 x 1 identity weight, so Z is exactly the grid.
    """
    be = require_backend(backend)
    dt = np.dtype(dtype)
    grid = np.concatenate([np.linspace(-40.0, 40.0, 400_001),
                           [0.0, -0.0, 1e-30, -1e-30, 1e-8, -1e-8, 1e4, -1e4, 3e38, -3e38]])
    A = np.ascontiguousarray(grid.astype(dt)[:, None])
    W, b = np.ones((1, 1), dt), np.zeros(1, dt)
    got = be.dense_forward(A, W, b, activation, np.empty_like(A))
    want = ref.dense_forward(A, W, b, activation, np.empty_like(A))
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    i = int(np.argmax(err))
    assert err[i] <= ACTIVATION_ATOL[dt], (
        f"{activation} error {err[i]:.3g} at x = {A[i, 0]!r}: got {got[i, 0]!r}, "
        f"NumPy {want[i, 0]!r}")


@pytest.mark.parametrize("backend", COMPILED)
def test_backend_exposes_every_reference_kernel(backend):
    be = require_backend(backend)
    missing = [name for name in ref.KERNELS if not callable(getattr(be, name, None))]
    assert missing == []
    assert set(ref.KERNELS) <= set(be.__all__)


def _relayout(a, how):
    """The same values in another memory layout: Fortran order, or a strided view."""
    if not isinstance(a, np.ndarray) or a.ndim == 0:
        return a
    if how == "fortran":
        return np.asfortranarray(a)
    big = np.empty(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype) if a.ndim else a
    view = big[..., ::2]
    view[...] = a
    return view


@pytest.mark.parametrize("how", ["fortran", "strided"])
@pytest.mark.parametrize("backend", ("numpy",) + COMPILED)
@pytest.mark.parametrize("spec", KERNELS, ids=lambda s: s.name)
def test_any_memory_layout_gives_the_c_order_result(spec, backend, how):
    """Fortran-ordered and strided arrays are copied, never misread: every output (in place
    or not) and return value equals the C-order call's, bit for bit."""
    be = ref if backend == "numpy" else require_backend(backend)
    fn = getattr(be, spec.name)
    variant = spec.variants[0]
    results = []
    for layout in ("C", how):
        case = spec.build(np.random.default_rng(SEED), np.dtype(np.float64), (7, 13), variant)
        args = copy.deepcopy(case.args)
        if layout != "C":
            # An aliased pair (``out`` is ``Z``) stays one array in the new layout.
            moved = {}
            args = [moved.setdefault(id(a), _relayout(a, how)) if isinstance(a, np.ndarray)
                    else ([_relayout(w, how) for w in a] if isinstance(a, list) else a)
                    for a in args]
        ret = fn(*args)
        written = [np.array(args[case.names.index(n)]) for n in case.written]
        results.append((ret if not isinstance(ret, np.ndarray) else np.array(ret), written))
    (ret_c, out_c), (ret_x, out_x) = results
    for a, b in zip(out_c, out_x):
        np.testing.assert_array_equal(a, b)
    if isinstance(ret_c, np.ndarray):
        np.testing.assert_array_equal(ret_c, ret_x)
    else:
        assert ret_c == ret_x

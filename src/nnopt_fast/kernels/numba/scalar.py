"""Scalar helpers of the Numba kernels: codes, activations, sign, the dropout hash."""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload, register_jitable

from .. import hashing
from .._numba_config import FASTMATH, jit
from ..codes import ACTIVATIONS, OPTIMIZERS, OUTPUTS, STATUS

__all__ = ["fast_tanh", "fast_exp", "activate", "derivative", "sign", "soft_threshold", "mix64",
           "step_key", "dropout_bits"]

# The code tables as module constants, which Numba folds into the compiled code.
IDENTITY, TANH, RELU, LOGISTIC = (ACTIVATIONS[k] for k in ("identity", "tanh", "relu",
                                                           "logistic"))
SOFTMAX, LOGISTIC_OUT, SQUARED, EXP_OUT = (OUTPUTS[k] for k in ("softmax", "logistic",
                                                              "identity", "exp"))
SGD, MOMENTUM, NESTEROV, ADAM = (OPTIMIZERS[k] for k in ("sgd", "momentum", "nesterov",
                                                         "adam"))
OK, NONFINITE, ZERO_WEIGHT, INTERRUPTED = (STATUS[k] for k in ("ok", "nonfinite",
                                                               "zero_weight", "interrupted"))

# splitmix64 constants as uint64 scalars: Numba turns an int64/uint64 mix into float64,
# so every operand of the hash must already be uint64.
_GOLDEN = np.uint64(hashing.GOLDEN)
_MIX1 = np.uint64(hashing.MIX1)
_MIX2 = np.uint64(hashing.MIX2)
_SH30 = np.uint64(30)
_SH27 = np.uint64(27)
_SH31 = np.uint64(31)
_DROP_SHIFT = np.uint64(64 - hashing.DROPOUT_BITS)

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


def fast_tanh(x):
    """tanh for the kernels: a rational approximation in float32, libm's tanh in float64.

    Without Intel SVML, ``np.tanh`` in Numba is a scalar libm call that blocks
    vectorization; the float32 rational form vectorizes. Max abs error vs ``np.tanh``:
    < 1e-6 in float32 (measured 3.6e-7), libm in float64. NaN propagates.
    Callable from Python (scalar) and from compiled code.
    """
    if isinstance(x, np.float32):
        return np.float32(_tanh32(np.float32(x)))
    return math.tanh(x)


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


# ---------------------------------------------------------------------------
# exp without a libm call, so that loops over it vectorize: the C kernels' nn_exp_f32
# (csrc/nn_math.h), step for step.
# ---------------------------------------------------------------------------
@intrinsic
def _bitcast(typingctx, x, like):
    """The bits of ``x`` read as the type of ``like`` (same width: f32/u32)."""
    to = like

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(to))

    return to(x, like), codegen


# Not fast-math: reassociation would fold the magic-number rounding (x + M) - M into x
# and the two-part ln 2 of the range reduction into one.
_EXACT = {"nogil": True, "fastmath": False, "error_model": "numpy"}


@register_jitable(**_EXACT)
def _exp32(x):
    f = np.float32
    xc = f(-87.0) if x < f(-87.0) else (f(88.0) if x > f(88.0) else x)
    magic = f(12582912.0)  # 1.5 * 2^23: adding it rounds to an integer
    kd = xc * f(1.44269504088896341) + magic
    n = kd - magic
    r = (xc - n * f(0.693145751953125)) - n * f(1.428606765330187045e-06)
    p = f(1.0 / 5040.0)
    p = p * r + f(1.0 / 720.0)
    p = p * r + f(1.0 / 120.0)
    p = p * r + f(1.0 / 24.0)
    p = p * r + f(1.0 / 6.0)
    p = p * r + f(0.5)
    p = p * r + f(1.0)
    p = p * r + f(1.0)
    # 2^n from the low bits of kd (Numba widens uint32 arithmetic: cut back to 32 bits).
    sb = np.uint32((_bitcast(kd, np.uint32(0)) + np.uint32(127)) << np.uint32(23))
    scale = _bitcast(sb, f(0.0))
    res = p * scale
    res = f(0.0) if x < f(-87.0) else res
    return f(np.inf) if x > f(88.0) else res


def fast_exp(x):
    """exp for the kernels, in compiled code only: in float32 the C kernels' polynomial
    (about 2 ulp from expf, 0 below -87, inf above 88, NaN propagates), which vectorizes;
    libm's exp in float64."""
    raise NotImplementedError("fast_exp runs in compiled code only")


@overload(fast_exp, jit_options=_EXACT)
def _fast_exp_ol(x):
    if x == types.float32:
        return lambda x: _exp32(x)
    return lambda x: math.exp(x)


@jit(helper=True)
def activate(z, act):
    """``g(z)`` for activation code ``act``, in the dtype of ``z``."""
    t = type(z)
    if act == TANH:
        return fast_tanh(z)
    if act == RELU:
        # ``z < 0`` is False for NaN, which then propagates as np.maximum does.
        return t(0.0) if z < t(0.0) else z
    if act == LOGISTIC:
        return t(1.0) / (t(1.0) + math.exp(-z))
    return z


@jit(helper=True)
def derivative(h, act):
    """``g'`` from the activation's output ``h = g(z)``, in the dtype of ``h``."""
    t = type(h)
    if act == TANH:
        return t(1.0) - h * h
    if act == RELU:
        return t(1.0) if h > t(0.0) else t(0.0)
    if act == LOGISTIC:
        return h * (t(1.0) - h)
    return t(1.0)


@jit(helper=True)
def sign(w):
    """``np.sign``: -1, 0 or 1 in the dtype of ``w``; NaN for NaN."""
    t = type(w)
    if w > t(0.0):
        return t(1.0)
    if w < t(0.0):
        return t(-1.0)
    return w * t(0.0)


@jit(helper=True)
def soft_threshold(w, thr):
    """``sign(w) max(|w| - thr, 0)``: the proximal step of ``thr |w|``."""
    a = abs(w) - thr
    return sign(w) * (a if a > type(w)(0.0) else type(w)(0.0))


@jit(helper=True)
def mix64(z):
    """splitmix64's finalizer on a uint64 (see :mod:`nnopt_fast.kernels.hashing`)."""
    z = (z ^ (z >> _SH30)) * _MIX1
    z = (z ^ (z >> _SH27)) * _MIX2
    return z ^ (z >> _SH31)


@jit(helper=True)
def step_key(layer_key, step):
    """The dropout key of one layer at one step, from the plan's ``layer_keys[l]``:
    ``mix(layer_key + (step + 1) G)`` (:func:`nnopt_fast.kernels.hashing.dropout_key`)."""
    return mix64(layer_key + np.uint64(step + 1) * _GOLDEN)


@jit(helper=True)
def dropout_bits(key, counter):
    """The top 24 bits of ``mix(counter G + key)``; unit j of batch row i of a layer of
    width m has ``counter = i m + j + 1`` (uint64), and is kept iff its bits are below the
    layer's threshold."""
    return mix64(counter * _GOLDEN + key) >> _DROP_SHIFT

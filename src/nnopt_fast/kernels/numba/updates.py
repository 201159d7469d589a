"""The parameter update of the Numba backend: per-step coefficients, optimizers, penalties."""

import math
from typing import NamedTuple

import numpy as np

from .._numba_config import jit
from .rows import penalized_grad, penalty_sums, soft_threshold_all
from .scalar import ADAM, MOMENTUM, NESTEROV, SGD

__all__ = ["TrainArrays", "Coeffs", "UpdateRule", "StepScalars", "adam_step_size",
           "step_coeffs", "penalty_value", "optimizer_range", "update_range", "update_chunk",
           "slice_rows"]


class TrainArrays(NamedTuple):
    """The parameters and optimizer state, each laid out like the flat parameters
    (``W_1, b_1, ..., W_L, b_L``); the state of an unused optimizer is empty."""

    params: np.ndarray
    grads: np.ndarray
    velocity: np.ndarray
    adam_m: np.ndarray
    adam_v: np.ndarray


class Coeffs(NamedTuple):
    """The float64 scalars of one training step on a batch of weight ``S``."""

    lr: float
    S: float
    #: ``1 / S``, the scale of the batch's summed gradients.
    scale: float
    #: ``penalty_div`` if it is > 0, else ``S``.
    d: float
    #: ``l2 / d`` and ``l1 / (2 d)``, the penalty gradients' coefficients.
    c2: float
    c1: float
    #: Adam's bias-corrected step size (0 for the other optimizers).
    adam_lr: float


class UpdateRule(NamedTuple):
    """What the update of one step does, besides its scalars."""

    optimizer: int
    #: Add ``c2 W`` to the weights' gradient (``c2 != 0``).
    use_c2: bool
    #: Add ``c1 sign(W)`` (subgradient L1, ``c1 != 0``).
    l1_subgradient: bool
    #: Soft-threshold the weights after the step (proximal L1, ``c1 != 0``).
    l1_proximal: bool
    #: Return the sums of the penalty (``l2`` or ``l1`` is not 0).
    want_penalty: bool


class StepScalars(NamedTuple):
    """The scalars of the update loops, cast to the parameters' dtype as NumPy casts them."""

    c2: object
    c1: object
    #: ``lr c1``, the soft threshold of the proximal L1 step.
    prox_threshold: object
    lr: object
    momentum: object
    beta1: object
    one_minus_beta1: object
    beta2: object
    one_minus_beta2: object
    adam_lr: object
    adam_epsilon: object


@jit(helper=True)
def adam_step_size(lr, beta1, beta2, t):
    """Adam's bias-corrected step size ``lr sqrt(1 - b2^t) / (1 - b1^t)`` (float64)."""
    return lr * math.sqrt(1.0 - beta2 ** np.float64(t)) / (1.0 - beta1 ** np.float64(t))


@jit(helper=True)
def step_coeffs(plan, S, lr, t):
    """The :class:`Coeffs` of update number ``t`` with learning rate ``lr`` on a batch of
    weight ``S`` (the reference's ``penalty_coefficients`` and ``adam_step_size``)."""
    d = plan.penalty_div if plan.penalty_div > 0.0 else S
    adam_lr = adam_step_size(lr, plan.beta1, plan.beta2, t) if plan.optimizer == ADAM else 0.0
    return Coeffs(lr, S, 1.0 / S, d, plan.l2 / d, plan.l1 / (2.0 * d), adam_lr)


@jit(helper=True)
def penalty_value(plan, s2, s1, d):
    """``(l2/2 sum W^2 + l1/2 sum |W|) / d`` from the sums; a zero strength adds exactly 0,
    even beside non-finite weights."""
    p2 = 0.5 * plan.l2 * s2 if plan.l2 != 0.0 else 0.0
    p1 = 0.5 * plan.l1 * s1 if plan.l1 != 0.0 else 0.0
    return (p2 + p1) / d


@jit(helper=True, inline=True)
def update_rule(plan, coeffs):
    """The :class:`UpdateRule` of a step with :class:`Coeffs` ``coeffs``."""
    return UpdateRule(plan.optimizer, coeffs.c2 != 0.0,
                      plan.l1_subgradient and coeffs.c1 != 0.0,
                      plan.l1_proximal and coeffs.c1 != 0.0, plan.l2 != 0.0 or plan.l1 != 0.0)


@jit(helper=True, inline=True)
def step_scalars(plan, coeffs, like):
    """The :class:`StepScalars` of a step, in the dtype of the array ``like``."""
    ty = like.dtype.type
    return StepScalars(ty(coeffs.c2), ty(coeffs.c1), ty(coeffs.lr * coeffs.c1), ty(coeffs.lr),
                       ty(plan.momentum), ty(plan.beta1), ty(1.0 - plan.beta1), ty(plan.beta2),
                       ty(1.0 - plan.beta2), ty(coeffs.adam_lr), ty(plan.adam_epsilon))


# ---------------------------------------------------------------------------
# the optimizers, one parameter at a time
# ---------------------------------------------------------------------------
@jit(helper=True, inline=True)
def sgd_update(w, g, k):
    """Plain gradient descent: ``w - lr g``."""
    return w - k.lr * g


@jit(helper=True, inline=True)
def velocity_update(v, g, k):
    """The velocity of both momentum methods: ``mu v - lr g``, rounded as NumPy's
    ``v *= mu; v -= lr g``."""
    v = v * k.momentum
    return v - k.lr * g


@jit(helper=True, inline=True)
def momentum_update(w, v):
    """Heavy ball, with the updated velocity ``v``: ``w + v``."""
    return w + v


@jit(helper=True, inline=True)
def nesterov_update(w, g, v, k):
    """Nesterov (scikit-learn's form), with the updated velocity ``v``: ``w + mu v - lr g``."""
    return w + (k.momentum * v - k.lr * g)


@jit(helper=True, inline=True)
def adam_moments(m, v, g, k):
    """Adam's moments ``(b1 m + (1 - b1) g, b2 v + (1 - b2) g^2)``."""
    m = m * k.beta1
    v = v * k.beta2
    return m + k.one_minus_beta1 * g, v + k.one_minus_beta2 * (g * g)


@jit(helper=True, inline=True)
def adam_update(w, m, v, k):
    """Adam, with the updated moments: ``w - lr_t m / (sqrt(v) + eps)``."""
    return w - k.adam_lr * m / (math.sqrt(v) + k.adam_epsilon)


@jit
def optimizer_range(opt, seg, use_c2, k):
    """The optimizer step ``opt`` on ``seg`` (:class:`TrainArrays` of one stretch of the
    parameters), with gradient ``g = G (+ c2 W when use_c2)``, in the reference's rounding
    order; ``k`` is the step's :class:`StepScalars`.

    One loop per optimizer, its per-parameter update inlined into the loop's IR: a loop
    that dispatches on ``opt`` per element, or calls a helper left to LLVM's inliner,
    stays scalar (measured 6 to 80 ns per parameter instead of < 0.5). The arrays are
    slices indexed from 0, so Numba knows the index is non-negative and drops the
    negative-index wraparound test that also blocks vectorization.
    """
    P, G = seg.params, seg.grads
    n = P.shape[0]
    # The coupled L2 gradient is written back to G, as the reference's inplace_l2_grad.
    # Its four lines repeat in each loop on purpose: as an inline helper they left the
    # Adam loop scalar (17 ns instead of 0.6 ns per float32 parameter, measured).
    if opt == SGD:
        for i in range(n):
            w = P[i]
            g = G[i]
            if use_c2:
                g = g + k.c2 * w
                G[i] = g
            P[i] = sgd_update(w, g, k)
    elif opt == MOMENTUM or opt == NESTEROV:
        V = seg.velocity
        nesterov = opt == NESTEROV
        for i in range(n):
            w = P[i]
            g = G[i]
            if use_c2:
                g = g + k.c2 * w
                G[i] = g
            v = velocity_update(V[i], g, k)
            V[i] = v
            P[i] = nesterov_update(w, g, v, k) if nesterov else momentum_update(w, v)
    else:
        Mo, Vo = seg.adam_m, seg.adam_v
        for i in range(n):
            w = P[i]
            g = G[i]
            if use_c2:
                g = g + k.c2 * w
                G[i] = g
            m, v = adam_moments(Mo[i], Vo[i], g, k)
            Mo[i] = m
            Vo[i] = v
            P[i] = adam_update(w, m, v, k)


@jit(helper=True, inline=True)
def update_range(rule, k, seg, is_weight):
    """The step of one stretch ``seg`` (:class:`TrainArrays` of slices) of one parameter
    segment, weights if ``is_weight``, else biases: the step is elementwise, so any cut
    of a segment gives the same result. ``rule``: :class:`UpdateRule`; ``k``:
    :class:`StepScalars`.

    Weights: ``g = G + c2 W (+ c1 sign W)`` (written back to ``G``, as the reference
    does), the optimizer update, then ``W <- soft_threshold(W, lr c1)`` with the proximal
    L1; biases take the optimizer step only. Returns ``(sum W^2, sum |W|)`` of those
    weights before the step when ``rule.want_penalty`` and ``is_weight``, else zeros.
    """
    s2 = 0.0
    s1 = 0.0
    if not is_weight:
        optimizer_range(rule.optimizer, seg, False, k)
        return s2, s1
    if rule.want_penalty:
        s2, s1 = penalty_sums(seg.params)
    if rule.l1_subgradient or rule.l1_proximal:
        # Three simple loops (penalized gradient, optimizer, soft threshold) rather than
        # one loop with every branch, for the vectorization reasons of optimizer_range.
        penalized_grad(seg.grads, seg.params, k.c2, k.c1, rule.use_c2, rule.l1_subgradient)
        optimizer_range(rule.optimizer, seg, False, k)
        if rule.l1_proximal:
            soft_threshold_all(seg.params, k.prox_threshold)
    else:
        optimizer_range(rule.optimizer, seg, rule.use_c2, k)
    return s2, s1


@jit(helper=True)
def slice_rows(nb, s, n_slices):
    """Rows ``r0:r1`` of slice ``s`` of an ``nb``-row batch cut into ``n_slices``."""
    return nb * s // n_slices, nb * (s + 1) // n_slices


@jit(helper=True)
def chunk_bounds(n, part, n_parts):
    """``a:b`` of part ``part`` of ``n`` parameters cut into ``n_parts`` chunks of a
    multiple of 32 entries each (so no two parts write one cache line)."""
    per = ((n + n_parts - 1) // n_parts + 31) // 32 * 32
    return min(n, part * per), min(n, (part + 1) * per)


@jit(helper=True, inline=True)
def _reduce_slices(slice_grads, nb, a, b, G):
    """``G[a:b]`` = the sum of the non-empty slices' gradients, in slice order."""
    n_slices = slice_grads.shape[0]
    first = True
    for s in range(n_slices):
        r0, r1 = slice_rows(nb, s, n_slices)
        if r1 > r0:
            if first:
                G[a:b] = slice_grads[s, a:b]
                first = False
            else:
                for j in range(a, b):
                    G[j] = G[j] + slice_grads[s, j]


@jit(helper=True, inline=True)
def update_chunk(plan, state, slice_grads, nb, part, n_parts, coeffs):
    """The step of chunk ``part`` of ``n_parts`` of every parameter segment (each ``W_l``
    and ``b_l``, cut by :func:`chunk_bounds`): the whole step with ``n_parts = 1``.

    When ``slice_grads`` has rows (the gradients of the slices of an ``nb``-row batch,
    laid out like the parameters), the chunk's gradient is first their sum, in slice
    order. Returns ``(sum W^2, sum |W|)`` of the chunk's weights before the step (zeros
    without a penalty).
    """
    sizes = plan.sizes
    offsets = plan.param_offsets
    rule = update_rule(plan, coeffs)
    k = step_scalars(plan, coeffs, state.params)
    s2 = 0.0
    s1 = 0.0
    for l in range(1, plan.n_layers + 1):
        for kind in range(2):
            n_seg = sizes[l] * (sizes[l - 1] if kind == 0 else 1)
            a, b = chunk_bounds(n_seg, part, n_parts)
            if b <= a:
                continue
            lo = offsets[l - 1, kind] + a
            hi = offsets[l - 1, kind] + b
            _reduce_slices(slice_grads, nb, lo, hi, state.grads)
            seg = TrainArrays(state.params[lo:hi], state.grads[lo:hi], state.velocity[lo:hi],
                              state.adam_m[lo:hi], state.adam_v[lo:hi])
            x2, x1 = update_range(rule, k, seg, kind == 0)
            s2 += x2
            s1 += x1
    return s2, s1

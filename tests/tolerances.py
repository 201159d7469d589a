"""Every numerical tolerance of the parity tests, in one place, each with its reason."""

import numpy as np

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)

#: Relative tolerance of one kernel's output against the reference, measured against the
#: output's natural magnitude (for a GEMM ``|A| @ |W| + |b|``, for an update
#: ``|W| + |lr g|``, ...), never against the output itself, which may cancel to ~0.
#: float64: a different summation order (scipy's BLAS vs numpy's, blocking, FMA) moves a
#: k-term dot product by at most ~k * eps64 = 65 * 1.1e-16 ~ 7e-15 of that magnitude at
#: the largest inner dimension tested; 1e-12 leaves two decades of room, and any real
#: semantic slip (a missing bias, a wrong sign, a skipped row) is off by O(1).
#: float32: the same bound with eps32 = 1.2e-7 is ~8e-6 at k = 65 in the worst case
#: (typically sqrt(k) * eps32 ~ 1e-6); FMA contraction moves elementwise updates by one
#: ulp (6e-8). 1e-5 covers both.
KERNEL_RTOL = {F64: 1e-12, F32: 1e-5}

#: Absolute error allowed to a backend's tanh (and logistic, ``(1 + tanh(x/2)) / 2``)
#: against NumPy's: the bounds issue 3 sets for the vectorizable rational approximation
#: (glibc's tanhf does not vectorize). The outputs are in [-1, 1], so absolute is the
#: right measure. float64's bound is a few hundred ulps of 1.
ACTIVATION_ATOL = {F64: 1e-13, F32: 1e-6}

#: Loss values returned by the loss kernels, relative to ``sum_i |sw_i| (1 + L_i)``.
#: The reference accumulates in float64 for both dtypes, so the only float32 error is
#: the per-sample loss computed from float32 probabilities (a few ulps of p, i.e. ~1e-6
#: nats each, more where the logistic approximation's 1e-6 meets a small p(1 - p),
#: which the test adds separately). float64: summation order only.
LOSS_RTOL = {F64: 1e-12, F32: 1e-5}

#: ``penalty`` sums squares and absolute values in float64 whatever the weights' dtype
#: (the spec says so), so both dtypes differ only by summation order: at 265k positive
#: terms that is ~sqrt(n) * eps64 ~ 6e-14 typically, n * eps64 ~ 3e-11 at the very worst
#: for naive sequential summation; 1e-12 catches a float32 accumulator (off by ~1e-5).
PENALTY_RTOL = 1e-12

#: Whole-training parity: final weights after 3 epochs, as ``max|a - b| / max|b|``
#: (issue 3's figures). float64: ~100 steps each amplify the ~1e-15 per-step rounding
#: differences by at most the network's Lipschitz constants; 1e-10 still detects any
#: difference in semantics (a single mis-keyed dropout unit moves weights by ~1e-3).
#: float32: the same growth from eps32 ~ 1e-7 per step, plus the tanh approximation's
#: 1e-6 per activation, gives ~1e-5; 1e-4 is the issue's bound.
TRAIN_WEIGHT_RTOL = {F64: 1e-10, F32: 1e-4}

#: Per-epoch training losses returned by ``run_epoch`` (data + penalty, / m), relative.
#: The same error budget as the weights: the loss of each batch is computed from
#: weights that already carry the accumulated differences.
TRAIN_LOSS_RTOL = {F64: 1e-10, F32: 1e-4}


def kernel_rtol(dtype):
    """:data:`KERNEL_RTOL` for ``dtype`` (float32 or float64)."""
    return KERNEL_RTOL[np.dtype(dtype)]


def activation_atol(dtype, activation):
    """:data:`ACTIVATION_ATOL` for a transcendental activation, 0 for relu and identity.

    relu and identity involve no approximation: only the GEMM feeding them can differ.
    """
    if activation in ("tanh", "logistic"):
        return ACTIVATION_ATOL[np.dtype(dtype)]
    return 0.0

"""The counter-based generator of the dropout masks: splitmix64's finalizer on counters.

One definition for every backend: the reference hashes NumPy arrays with it, the epoch
plan derives each layer's stream key from it, and the C (``csrc/nn_math.h``) and Numba
kernels implement the same arithmetic, tested bit for bit against the reference.
"""

import numpy as np

__all__ = ["GOLDEN", "DROPOUT_BITS", "MASK64", "mix64_int", "mix64_array", "dropout_key",
           "dropout_threshold"]

MASK64 = (1 << 64) - 1
#: The golden-ratio increment of splitmix64.
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
#: Dropout compares the top 24 bits of a 64-bit hash with ``keep * 2**24``.
DROPOUT_BITS = 24


def mix64_int(z):
    """splitmix64's finalizer on a Python int, modulo 2**64."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def mix64_array(z):
    """splitmix64's finalizer on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def dropout_key(seed, layer, step):
    """The 64-bit stream key of one layer at one training step.

    ``k = mix(mix(mix(seed) + (layer+1) G) + (step+1) G)`` with ``G = 0x9E3779B97F4A7C15``
    and ``mix`` splitmix64's finalizer, all modulo 2**64.
    """
    k = mix64_int(seed)
    k = mix64_int(k + (layer + 1) * GOLDEN)
    return mix64_int(k + (step + 1) * GOLDEN)


def dropout_threshold(keep):
    """Integer threshold on the top 24 hash bits: a unit is kept iff ``bits < int(keep * 2**24)``."""
    return int(keep * float(1 << DROPOUT_BITS))

"""Per-kernel benchmarks: kernel x backend x dtype x layer shape of the workloads.

Run explicitly, e.g. only the large float32 shapes::

    python -m pytest bench/bench_kernels.py -k "float32 and W3" --benchmark-max-time 0.2

Each kernel runs on preallocated buffers, as inside an epoch; in-place kernels update
their buffers on every call (the values drift, the work per call does not).
"""

import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast.kernels import get_backend

BACKENDS = ("numpy", "cython", "numba")
DTYPES = ("float32", "float64")
#: (batch, n_in, n_out) of a layer of each workload: W1's hidden layer, W2's first
#: layer, W3's 1024 x 1024 layer.
SHAPES = {"W1-64x32-B32": (32, 64, 32), "W2-784x256-B64": (64, 784, 256),
          "W3-1024x1024-B256": (256, 1024, 1024)}


def _args(kernel, dtype, shape, rng):
    """Arguments of one call of ``kernel`` on a layer of ``shape``."""
    B, n_in, n_out = shape

    def a(*s):
        return rng.standard_normal(s).astype(dtype)

    A, W, b = a(B, n_in), (a(n_in, n_out) / np.sqrt(n_in)).astype(dtype), a(n_out)
    out = np.empty((B, n_out), dtype)
    mask = get_backend("numpy").dropout_mask(3, 1, 5, 0, 0.8, np.empty((B, n_out), dtype))
    n_classes = 10
    table = {
        "dense_forward": (A, W, b, "tanh", out),
        "dense_backward": (a(B, n_out), A, W, 1.0 / B, np.empty_like(W), np.empty_like(b),
                           np.empty_like(A)),
        "activation_backward": (np.tanh(a(B, n_out)), a(B, n_out), "tanh", out, mask),
        "dropout_mask": (12345, 1, 7, 0, 0.8, out),
        "softmax_cross_entropy": (a(B, n_classes), rng.integers(0, n_classes, B), None,
                                  np.empty((B, n_classes), dtype)),
        "inplace_l2_grad": (a(n_in, n_out), W, 1e-4),
        "l2_decay_step": (W, a(n_in, n_out), 0.05, 1e-4),
        "l1_prox_step": (W, 1e-9),
        "sgd_step": (W.reshape(-1), a(n_in * n_out), 0.05),
        "momentum_step": (W.reshape(-1), a(n_in * n_out), np.zeros(n_in * n_out, dtype), 0.05,
                          0.9),
        "adam_step": (W.reshape(-1), a(n_in * n_out), np.zeros(n_in * n_out, dtype),
                      np.zeros(n_in * n_out, dtype), 1e-3, 0.9, 0.999, 1e-8, 10),
        "penalty": ([W, a(n_out, 10)], 0.5, 0.5, 1000.0),
    }
    return table[kernel]


KERNELS = ("dense_forward", "dense_backward", "activation_backward", "dropout_mask",
           "softmax_cross_entropy", "inplace_l2_grad", "l2_decay_step", "l1_prox_step",
           "sgd_step", "momentum_step", "adam_step", "penalty")


@pytest.mark.parametrize("shape_name", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel(benchmark, kernel, backend, dtype, shape_name):
    info = nf.backends()[backend]
    if not info["available"]:
        pytest.skip(f"{backend}: {info['reason']}")
    fn = getattr(get_backend(backend), kernel)
    args = _args(kernel, np.dtype(dtype), SHAPES[shape_name], np.random.default_rng(0))
    fn(*args)  # warm-up: JIT compilation outside the timed region
    benchmark.group = f"{kernel} {shape_name} {dtype}"
    benchmark(fn, *args)

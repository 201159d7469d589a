"""Numba backend: the reference's kernels, and whole epochs, as ``@jit`` compiled code.

Modules by role: :mod:`.scalar` (codes, activations, the dropout hash), :mod:`.rows`
(row and elementwise kernels), :mod:`.updates` (per-step coefficients, optimizers,
penalties), :mod:`.sparse` (the first layer on a sparse X's non-zeros), :mod:`.step`
(workspace views and the batch step), :mod:`.inference` (the compiled forward pass
of prediction), :mod:`.barrier` (atomics and the barrier of the
threaded epochs), :mod:`.borrow` (the epochs' arrays without reference counting),
:mod:`.workers` (the compiled epochs), :mod:`.driver` (their buffers and thread teams)
and :mod:`.bodies` (the single kernels).
"""

import numba

from .._numba_config import FASTMATH, cache_info
from ..dispatch import make_kernels
from ..epoch import make_run_epoch
from ..hashing import dropout_threshold  # noqa: F401 (one of every backend's kernels)
from ..reference import DOCS, KERNELS
from .bodies import BODIES
from .driver import parallel_epoch, serial_epoch
from .inference import NumbaNetwork
from .scalar import fast_tanh
from .workers import serial_loop

__all__ = ["BACKEND_NAME", "backend_info", "fast_tanh", "serial_epoch", "parallel_epoch",
           "compile_network", *KERNELS]

#: Name of this backend in the registry.
BACKEND_NAME = "numba"

globals().update(make_kernels(BODIES, DOCS))

run_epoch = make_run_epoch(serial_epoch, parallel_epoch)
run_epoch.__doc__ = """One epoch of mini-batch training, in compiled code with the GIL released.

    Same semantics, parameters and return value as
    :func:`nnopt_fast.kernels.reference.run_epoch`. One compiled batch step
    (:func:`.step.batch_step`) runs every batch; the buffers live in
    ``state.workspace["numba"]``, made on the first epoch of a run: no Python call and no
    allocation per batch. With ``cfg.n_threads > 1`` the epoch runs on that many threads
    of its own: sync (each batch split by rows, deterministic) or Hogwild.
    """


def compile_network(coefs, intercepts, activation, output):
    """The compiled forward pass of a network (weights C-contiguous, of one dtype; codes
    of :mod:`nnopt_fast.kernels.codes`); ``.run(X, out, apply_output)``
    (:class:`.inference.NumbaNetwork`)."""
    return NumbaNetwork(coefs, intercepts, activation, output)


def backend_info():
    """Details reported by :func:`nnopt_fast.backends`: versions, cache, math options."""
    import llvmlite

    info = {
        "detail": "Numba @jit kernels; whole epochs in one compiled call",
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "svml": bool(getattr(numba.config, "USING_SVML", False)),
        "fastmath": sorted(FASTMATH),
        "tanh": "float32: rational approximation (max abs err < 1e-6); float64: libm",
        "threading": "threaded epochs on threads of their own (nnopt_fast.kernels.team), "
                     "with a barrier of atomics; no Numba threading layer",
        "compiled_epoch_signatures": len(serial_loop.signatures),
        "epoch_cache_hits": sum(serial_loop.stats.cache_hits.values()),
    }
    info.update(cache_info())
    return info

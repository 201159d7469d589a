"""The one owner of a training run's thread budget: OpenMP/Numba threads versus BLAS threads."""

import contextlib
import dataclasses
import os
import sys

from threadpoolctl import threadpool_limits

from .._validation import check_scalar

__all__ = ["available_cores", "resolve_n_threads", "choose_mode", "thread_budget",
           "DATA_WORK_THRESHOLD", "BLAS_WORK_THRESHOLD", "HOGWILD_WORK_THRESHOLD",
           "PARALLEL_BACKENDS"]

#: Multiply-adds of one step's forward GEMMs (batch rows x weights) from which a sync run
#: splits each batch among its threads (data parallelism); below it, the serial epoch
#: runs with threaded BLAS. Measured on the 2-core machine of bench/ (docs/threads.md):
#: the per-step barriers, the weights each core must fetch from the other after an
#: update, and two busy cores slowing each other's memory traffic cost a W1 step
#: (32 x 2,368 weights = 7.6e4) more than half of it (data 0.65-0.8x of one thread,
#: threaded BLAS ~1.0x: OpenBLAS keeps such GEMMs on one thread) and a W2 step
#: (64 x 234,752 = 1.5e7) about as much as it saves (data 0.9-1.2x, BLAS 1.1-1.3x),
#: while a W3 step (256 x 1.86e6 = 4.8e8) amortizes them (data 1.74-1.77x, BLAS 1.69x).
DATA_WORK_THRESHOLD = 1 << 26

#: Below this many multiply-adds per step a sync run keeps to one thread altogether: its
#: GEMMs are too small for OpenBLAS to split (W1, 7.6e4: threaded BLAS measured
#: 0.94-1.13x, i.e. nothing but noise and threadpoolctl's overhead), so the extra
#: threads could only slow it down. W2 (1.5e7) gains from threaded BLAS (1.11-1.26x).
BLAS_WORK_THRESHOLD = 1 << 20

#: Hogwild runs its threaded epoch from this many multiply-adds per step: each step
#: reads the weights the other threads have just written, and on W4 (one sample per
#: step, 2,368 weights) that costs more than the step (0.20x Cython, 0.66x Numba), while
#: W1's steps (7.6e4) do not lose (1.0-1.1x Cython, 1.4-1.7x Numba). Below it, and when
#: an epoch has fewer than two batches per thread, a Hogwild run takes the serial epoch
#: instead (with threaded BLAS for steps that are large enough, as sync does) -- one of
#: the schedules Hogwild allows anyway.
HOGWILD_WORK_THRESHOLD = 1 << 14


def available_cores():
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_n_threads(n_threads):
    """Validate ``n_threads``: None means every available core.

    Parameters
    ----------
    n_threads : int >= 1 or None

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``n_threads`` is below 1 or above :func:`available_cores` (more threads than
        cores only oversubscribes: no clamp, so a typo is not silently ignored).
    TypeError
        If ``n_threads`` is not an integer.
    """
    cores = available_cores()
    if n_threads is None:
        return cores
    n = check_scalar(n_threads, "n_threads", kind="int", low=1)
    if n > cores:
        raise ValueError(f"n_threads must be between 1 and the {cores} available cores, "
                         f"got {n}")
    return n


#: Backends with a multithreaded epoch (``cfg.n_threads > 1`` in their ``run_epoch``).
PARALLEL_BACKENDS = ("cython", "numba")


def _step_work(cfg):
    """Multiply-adds of one step's forward GEMMs: batch rows x weights."""
    sizes = cfg.layer_sizes
    return cfg.batch_size * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def choose_mode(cfg, backend_name=None, n_samples=None):
    """How a run with ``cfg`` on backend ``backend_name`` uses its threads.

    Parameters
    ----------
    cfg : TrainConfig
    backend_name : str or None
    n_samples : int or None
        Rows per epoch, when known (Hogwild needs two batches per thread).

    Returns
    -------
    {"serial", "data", "blas"}
        ``"serial"``: the serial epoch on one thread, BLAS single-threaded (always with
        ``n_threads=1``).
        ``"data"``: the backend's multithreaded epoch (sync batches split among the
        threads, or Hogwild), BLAS single-threaded inside it.
        ``"blas"``: the serial epoch with ``n_threads`` BLAS threads, which computes the
        serial result up to the rounding of BLAS's threaded GEMMs.

        ``cfg.thread_mode`` ``"data"`` or ``"blas"`` is obeyed. ``"auto"`` goes by the
        multiply-adds of a step (batch rows x weights): sync gets ``"data"`` from
        :data:`DATA_WORK_THRESHOLD` on, ``"blas"`` from :data:`BLAS_WORK_THRESHOLD` on,
        ``"serial"`` below; Hogwild gets ``"data"`` from :data:`HOGWILD_WORK_THRESHOLD`
        on when an epoch has at least two batches per thread, otherwise what sync would
        get short of ``"data"``. A backend without a multithreaded epoch (the NumPy
        reference) gets ``"blas"``.
    """
    if cfg.n_threads <= 1:
        return "serial"
    if backend_name is not None and backend_name not in PARALLEL_BACKENDS:
        return "blas"
    if cfg.thread_mode != "auto":
        return cfg.thread_mode
    work = _step_work(cfg)
    if cfg.parallel == "hogwild":
        few = (n_samples is not None
               and -(-int(n_samples) // cfg.batch_size) < 2 * cfg.n_threads)
        if work >= HOGWILD_WORK_THRESHOLD and not few:
            return "data"
    elif work >= DATA_WORK_THRESHOLD:
        return "data"
    return "blas" if work >= BLAS_WORK_THRESHOLD else "serial"


def _numba_threads():
    """Numba's current thread count, or None when Numba is not loaded (never import it)."""
    numba = sys.modules.get("numba")
    return None if numba is None else (numba, numba.get_num_threads())


@contextlib.contextmanager
def thread_budget(cfg, backend=None, n_samples=None):
    """Hold the thread budget of one training run; yields the config the backend runs.

    Inside: BLAS (every loaded OpenBLAS/MKL/BLIS, via threadpoolctl) gets ``n_threads``
    threads in ``"blas"`` mode and 1 otherwise, so BLAS workers never compete with the
    epoch's OpenMP or Numba threads, and ``n_threads=1`` really is one thread (OpenBLAS's
    default of all cores made W2's serial epoch 6x slower on a busy machine); Numba (if
    loaded) gets ``n_threads`` in ``"data"`` mode. The yielded config has ``n_threads=1``
    in the other modes (the backend runs its serial epoch). Both settings are restored
    on exit, also when the body raises.

    Parameters
    ----------
    cfg : nnopt_fast.train.TrainConfig
    backend : module or None
        The backend module (its ``BACKEND_NAME`` picks the mode, see :func:`choose_mode`).
    n_samples : int or None
        Rows per epoch (see :func:`choose_mode`).

    Yields
    ------
    TrainConfig
    """
    mode = choose_mode(cfg, getattr(backend, "BACKEND_NAME", None), n_samples)
    n = int(cfg.n_threads)
    run_cfg = dataclasses.replace(cfg, n_threads=1) if mode != "data" else cfg
    saved = _numba_threads()
    with threadpool_limits(limits=n if mode == "blas" else 1, user_api="blas"):
        try:
            if saved is not None and mode == "data":
                saved[0].set_num_threads(n)
            yield run_cfg
        finally:
            if saved is not None:
                saved[0].set_num_threads(saved[1])

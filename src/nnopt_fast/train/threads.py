"""The one owner of the process's thread settings: cores, ``n_threads``, BLAS, OpenMP, Numba."""

import contextlib
import dataclasses
import os
import sys
import warnings

from threadpoolctl import threadpool_limits

from .._validation import check_scalar

__all__ = ["available_cores", "resolve_n_threads", "default_estimator_threads",
           "choose_mode", "thread_budget", "limit_thread_pools", "WORK_THRESHOLDS",
           "PARALLEL_BACKENDS"]

#: Per backend, the multiply-adds of one step's forward GEMMs (batch rows x weights) from
#: which ``thread_mode="auto"`` uses more than one thread, as ``(hogwild, blas, data)``:
#: Hogwild runs its threaded epoch from ``hogwild`` on; a sync run splits each batch
#: among its threads from ``data`` on and runs the serial epoch with threaded BLAS from
#: ``blas`` on; below, one thread. Measured 1 -> 2 threads on the 2-core machine of
#: bench/ (``bench/bench_threads.py``, four runs; docs/threads.md):
#:
#: - W1 (32 x 2,368 weights = 7.6e4): splitting the batch 0.66-0.97x, threaded BLAS
#:   0.94-1.13x (OpenBLAS cannot split such GEMMs), Hogwild 0.99-1.32x (Cython: the two
#:   writers' cache traffic eats the second core) but 1.40-1.68x (Numba's slower step);
#: - W2 (64 x 234,752 = 1.5e7): threaded BLAS 1.02-1.26x (Cython) but 0.90-1.07x (Numba),
#:   splitting 0.95-1.23x (Cython), 0.80-0.95x (Numba), Hogwild 1.20-1.63x;
#: - W3 (256 x 1.86e6 = 4.8e8): splitting 1.59-1.82x (Cython), 1.32-1.57x (Numba),
#:   threaded BLAS 1.46-1.71x;
#: - W4 (1 x 2,368): everything threaded loses (Hogwild 0.19-0.28x Cython).
#:
#: Backends not listed (and ``backend_name=None``) use the Cython row.
WORK_THRESHOLDS = {
    "cython": (1 << 17, 1 << 20, 1 << 26),
    "numba": (1 << 14, 1 << 26, 1 << 26),
}


# --------------------------------------------------------------------------- cores, n_threads
def available_cores():
    """CPUs this process may run on: its affinity mask, at least 1.

    ``os.process_cpu_count()`` where Python has it (3.13+; it also honours
    ``PYTHON_CPU_COUNT``), else ``len(os.sched_getaffinity(0))``, else ``os.cpu_count()``.
    So ``taskset -c 0``, a container's cpuset or ``os.sched_setaffinity`` count, and a CPU
    quota without a cpuset does not. Read again on every call: the mask can change while
    the process runs (~0.3 us).
    """
    count = getattr(os, "process_cpu_count", None)
    if count is not None:
        n = count()
    else:
        try:
            n = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # not Linux
            n = os.cpu_count()
    return max(1, n or 1)


def resolve_n_threads(n_threads, name="n_threads"):
    """The thread count a run uses when asked for ``n_threads``.

    Parameters
    ----------
    n_threads : int >= 1, -1 or None
        ``None`` and ``-1`` mean every available core (:func:`available_cores`).
    name : str
        The argument's name in messages.

    Returns
    -------
    int
        Between 1 and :func:`available_cores`.

    Warns
    -----
    UserWarning
        When ``n_threads`` is more than the available cores, which is then what the run
        gets (the message names both numbers). A model saved on a larger machine keeps
        training on a smaller one.

    Raises
    ------
    TypeError
        If ``n_threads`` is not an integer or None.
    ValueError
        If ``n_threads`` is 0 or negative other than -1.
    """
    cores = available_cores()
    if n_threads is None:
        return cores
    n = check_scalar(n_threads, name, kind="int")
    if n == -1:
        return cores
    if n < 1:
        raise ValueError(f"{name} must be a positive integer, or -1 or None for all "
                         f"{cores} available cores, got {n}")
    if n > cores:
        warnings.warn(f"{name}={n} asks for more threads than this process has cores "
                      f"({cores} available): using {cores}", UserWarning, stacklevel=2)
        return cores
    return n


def default_estimator_threads():
    """Threads of one estimator fit with ``n_threads=None``.

    1 inside a joblib worker (``GridSearchCV(n_jobs=2)``, ``cross_val_score(n_jobs=2)``:
    the other workers already hold the other cores); else ``OMP_NUM_THREADS`` when it is
    a positive integer (joblib's process workers and Dask's workers export it), at most
    the available cores; else every available core.

    Returns
    -------
    int
    """
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if getattr(backend, "nesting_level", 0) > 0:
        return 1
    cores = available_cores()
    try:
        env = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        env = 0
    return min(cores, env) if env > 0 else cores


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
        multiply-adds of a step (batch rows x weights) and the backend's row of
        :data:`WORK_THRESHOLDS`: sync gets ``"data"`` from its ``data`` threshold on,
        ``"blas"`` from its ``blas`` threshold on, ``"serial"`` below; Hogwild gets
        ``"data"`` from its ``hogwild`` threshold on when an epoch has at least two
        batches per thread, otherwise what sync would get short of ``"data"``. A backend
        without a multithreaded epoch (the NumPy reference) gets ``"blas"``.
    """
    if cfg.n_threads <= 1:
        return "serial"
    if backend_name is not None and backend_name not in PARALLEL_BACKENDS:
        return "blas"
    if cfg.thread_mode != "auto":
        return cfg.thread_mode
    hogwild_from, blas_from, data_from = WORK_THRESHOLDS.get(backend_name,
                                                             WORK_THRESHOLDS["cython"])
    work = _step_work(cfg)
    if cfg.parallel == "hogwild":
        few = (n_samples is not None
               and -(-int(n_samples) // cfg.batch_size) < 2 * cfg.n_threads)
        if work >= hogwild_from and not few:
            return "data"
    elif work >= data_from:
        return "data"
    return "blas" if work >= blas_from else "serial"


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


@contextlib.contextmanager
def limit_thread_pools(n_threads):
    """Hold BLAS and OpenMP to ``n_threads`` while work that calls BLAS from Python runs.

    For a run that is not an epoch of a backend (the estimators' lbfgs solver): below the
    available cores every pool threadpoolctl finds gets ``n_threads`` threads; at all
    cores they are left as they are. Set back on exit.

    Parameters
    ----------
    n_threads : int >= 1, -1 or None
        As in :func:`resolve_n_threads`.

    Yields
    ------
    int
        The thread count.
    """
    n = resolve_n_threads(n_threads)
    if n >= available_cores():
        yield n
        return
    with threadpool_limits(limits=n):
        yield n

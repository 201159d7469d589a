"""The one owner of the process's thread settings: cores, ``n_threads``, BLAS, OpenMP."""

import contextlib
import dataclasses
import functools
import itertools
import os
import sys
import threading
import warnings

import threadpoolctl

from .._validation import check_scalar

__all__ = ["available_cores", "resolve_n_threads", "default_estimator_threads",
           "choose_mode", "thread_budget", "limit_thread_pools", "inference_budget",
           "WORK_THRESHOLDS", "PARALLEL_BACKENDS"]

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
#: - W4 (1 x 2,368): everything threaded loses (Hogwild 0.19-0.28x Cython);
#: - MLPClassifier's default on digits (200 x 7,400 = 1.5e6): threaded BLAS 3-15x slower
#:   than one thread with the other core busy (each small GEMM waits for a BLAS thread).
#:
#: Backends not listed (and ``backend_name=None``) use the Cython row.
WORK_THRESHOLDS = {
    "cython": (1 << 17, 1 << 23, 1 << 26),
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


def resolve_n_threads(n_threads, name="n_threads", warn=True):
    """The thread count a run uses when asked for ``n_threads``.

    Parameters
    ----------
    n_threads : int >= 1, -1 or None
        ``None`` and ``-1`` mean every available core (:func:`available_cores`).
    name : str
        The argument's name in messages.
    warn : bool
        False: clamp to the available cores without the warning (a prediction of a model
        whose fit warned already).

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
    if n > cores and warn:
        warnings.warn(f"{name}={n} asks for more threads than this process has cores "
                      f"({cores} available): using {cores}", UserWarning, stacklevel=2)
    return min(n, cores)


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


# --------------------------------------------------------------------------- thread pools
_SCAN_LOCK = threading.Lock()
#: ``len(sys.modules)`` at the last scan, then the pools found: see :func:`_pools`.
_scan = (-1, (), (), ())


def _pools():
    """The native thread pools of this process: (shared BLAS, per-thread BLAS, OpenMP).

    threadpoolctl's scan of the loaded libraries costs 0.4-3 ms (more with more libraries
    loaded), too much for every ``partial_fit``. It is done once, and again only when
    ``sys.modules`` has changed size since, as a new native library is in practice loaded
    by an import (threadpoolctl's own cached controller uses the same test); a library
    loaded with ``ctypes`` alone is seen from the next import on.

    OpenMP's thread count belongs to the calling thread, and so does the count of an
    OpenBLAS built on OpenMP. A pthreads OpenBLAS (the one NumPy and SciPy bundle), MKL
    and BLIS keep one count for the whole process. So does the bundled OpenBLAS's
    ``openblas_set_num_threads_local``, despite its name (measured: docs/threads.md).
    """
    global _scan
    scan = _scan
    if scan[0] == len(sys.modules):
        return scan[1:]
    with _SCAN_LOCK:
        n_modules = len(sys.modules)
        if _scan[0] != n_modules:
            shared, per_thread, openmp = [], [], []
            for lib in threadpoolctl.ThreadpoolController().lib_controllers:
                if lib.user_api == "openmp":
                    openmp.append(lib)
                elif (lib.internal_api == "openblas"
                      and getattr(lib, "threading_layer", None) == "openmp"):
                    per_thread.append(lib)
                else:
                    shared.append(lib)
            _scan = (n_modules, tuple(shared), tuple(per_thread), tuple(openmp))
        return _scan[1:]


def _set_threads(pool, n):
    """Set one pool's thread count to ``n`` (nothing to do when it already is)."""
    if pool.get_num_threads() == n:
        return
    # threadpoolctl >= 3.8 lets one Python thread at a time control a pthreads OpenBLAS
    # and ignores the others; holding its ownership count around the call, as its own
    # limiters do, hands control back when done (or keeps it with an enclosing
    # ``threadpool_limits`` of this thread).
    ownership = getattr(threadpoolctl, "CONTROLLING_THREAD_OWNERSHIP", None)
    if ownership is None:
        pool.set_num_threads(n)
        return
    ownership.increment()
    try:
        pool.set_num_threads(n)
    finally:
        ownership.decrement()


class _SharedBlasCount:
    """The thread count of the process-wide BLAS pools, shared by the runs in progress.

    Each run says what it wants: its ``n_threads`` in ``"blas"`` mode, 1 otherwise, or
    None for "as it was". A run alone gets what it wants. While several runs are in
    progress (fits in several Python threads) every BLAS call runs on its caller's thread
    alone: the runs' own threads already hold the cores, and a run whose epoch splits
    its batches among threads needs single-threaded BLAS under it. The counts from
    before the first run are saved when it starts and set back when the last run ends,
    in whatever order the runs end.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.runs = {}  # run id -> (thread ident, wanted count or None)
        self.saved = {}  # library path -> (pool, its count before the first run)
        self._ids = itertools.count()

    def join(self, wanted):
        """Register a run that wants ``wanted`` BLAS threads; returns its id."""
        run = next(self._ids)
        with self.lock:
            self.runs[run] = (threading.get_ident(), wanted)
            try:
                self._apply()
            except BaseException:  # the run never starts, so it never leaves
                del self.runs[run]
                raise
        return run

    def leave(self, run):
        """Unregister run ``run``; the last one out sets the saved counts back."""
        with self.lock:
            del self.runs[run]
            self._apply()

    def _apply(self):
        if not self.runs:
            for pool, count in self.saved.values():
                _set_threads(pool, count)
            self.saved.clear()
            return
        wanted = 1 if len(self.runs) > 1 else next(iter(self.runs.values()))[1]
        for pool in _pools()[0]:
            if pool.filepath not in self.saved:
                count = pool.get_num_threads()
                if count is None:  # a library without the API: leave it alone
                    continue
                self.saved[pool.filepath] = (pool, count)
            _set_threads(pool, self.saved[pool.filepath][1] if wanted is None else wanted)

    def spare(self, run, n):
        """Threads of their own for run ``run`` (in progress) that wants ``n``: 1 while a
        run of another Python thread is in progress (its threads hold the cores), else at
        most the count every BLAS pool had before the first run (a user's limit)."""
        with self.lock:
            me = self.runs[run][0]
            if any(ident != me for ident, _ in self.runs.values()):
                return 1
            return min([n, *(count for _, count in self.saved.values())])

    def after_fork_in_child(self):
        # Only the forking thread lives on in a child, and another thread may have held
        # the lock at the fork. The saved counts stay: they are still the ones to restore.
        self.lock = threading.Lock()
        me = threading.get_ident()
        self.runs = {run: what for run, what in self.runs.items() if what[0] == me}


_SHARED_BLAS = _SharedBlasCount()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_SHARED_BLAS.after_fork_in_child)


@contextlib.contextmanager
def _per_thread_count(pools, n=None):
    """Hold the calling thread's count of per-thread ``pools`` at ``n`` (None: as it is
    now), and set it back on exit."""
    saved = [(pool, pool.get_num_threads()) for pool in pools]
    saved = [(pool, count) for pool, count in saved if count is not None]
    if n is not None:
        for pool, _ in saved:
            _set_threads(pool, n)
    try:
        yield
    finally:
        for pool, count in saved:
            _set_threads(pool, count)


@contextlib.contextmanager
def _blas_threads(n):
    """BLAS threads for one run: ``n``, or None to leave them as they are (shared: see
    :class:`_SharedBlasCount`; per thread: set in the calling thread and set back).
    Yields the run's id."""
    run = _SHARED_BLAS.join(n)
    try:
        if n is None:
            yield run
        else:
            with _per_thread_count(_pools()[1], n):
                yield run
    finally:
        _SHARED_BLAS.leave(run)


# --------------------------------------------------------------------------- budgets
@functools.lru_cache(maxsize=64)
def _with_threads(cfg, n_threads):
    """``cfg`` with ``n_threads`` (cached: a partial_fit loop asks for the same one each
    call, and ``dataclasses.replace`` costs ~10 us)."""
    return dataclasses.replace(cfg, n_threads=n_threads)


@contextlib.contextmanager
def thread_budget(cfg, backend=None, n_samples=None):
    """Hold the thread settings of one training run; yields the config the backend runs.

    The mode (:func:`choose_mode`) decides: in ``"blas"`` mode BLAS gets
    ``cfg.n_threads`` threads and the backend its serial epoch; in ``"data"`` mode the
    backend runs its multithreaded epoch on ``cfg.n_threads`` threads with BLAS on one
    thread under it (OpenBLAS threads next to the epoch's threads were measured 10-14x
    slower); in ``"serial"`` mode the serial epoch with BLAS on one thread (OpenBLAS's
    default of all cores made W2's serial epoch 6x slower on a busy machine).

    - BLAS (every pool threadpoolctl finds) is shared with the runs of other Python
      threads (:class:`_SharedBlasCount`): while several runs are in progress, BLAS
      runs on one thread per call. The counts from before the first run come back when
      the last one ends, in whatever order they end, also when training raises.
    - Neither OpenMP's nor Numba's count is set: both backends' thread teams get their
      size explicitly (neither uses an OpenMP runtime or Numba's threading layer).

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
        ``cfg``, with ``n_threads`` the thread count of the backend's epoch (1 for its
        serial epoch).
    """
    name = getattr(backend, "BACKEND_NAME", None)
    mode = choose_mode(cfg, name, n_samples)
    n = int(cfg.n_threads)
    epoch_threads = n if mode == "data" else 1
    run_cfg = cfg if epoch_threads == n else _with_threads(cfg, epoch_threads)
    with _blas_threads(n if mode == "blas" else 1):
        yield run_cfg


@contextlib.contextmanager
def inference_budget(n_threads=None):
    """Hold the thread settings of one large compiled inference call; yields the number
    of threads among which it splits its row blocks.

    BLAS runs on the calling thread alone meanwhile: the forward pass makes many small
    GEMM calls (a block each), on which a threaded BLAS gains nothing and waits for its
    threads when another library's BLAS threads or another process hold the cores
    (measured: ``predict_proba`` on digits 5.1 ms with two BLAS threads beside NumPy's,
    0.9 ms on one). Shared with the runs in progress as :func:`thread_budget`'s count is;
    set back on exit.

    The threads are those of an estimator's fit with ``n_threads`` (more than the
    available cores is clamped without a warning), at most the count every BLAS pool had
    before nnopt_fast's runs in progress changed it (a ``threadpool_limits`` or
    ``OPENBLAS_NUM_THREADS`` of the caller: the blocks' threads do the work BLAS's
    threads would), and 1 while a run of another Python thread is in progress (a fit or
    a prediction, whose threads hold the cores).

    Parameters
    ----------
    n_threads : int >= 1, -1 or None
        As an estimator's ``n_threads`` (None: :func:`default_estimator_threads`).

    Yields
    ------
    int
    """
    wanted = (default_estimator_threads() if n_threads is None
              else resolve_n_threads(n_threads, warn=False))
    with _blas_threads(1) as run:
        yield _SHARED_BLAS.spare(run, wanted)


@contextlib.contextmanager
def limit_thread_pools(n_threads):
    """Hold BLAS and OpenMP to ``n_threads`` while work that calls BLAS from Python runs.

    For a run that is not an epoch of a backend (the estimators' lbfgs solver): below the
    available cores BLAS gets ``n_threads`` threads (shared with other runs as in
    :func:`thread_budget`) and the calling thread's OpenMP count is limited as well; at
    all cores both are left as they are. Set back on exit.

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
    limit = n if n < available_cores() else None
    with _blas_threads(limit):
        if limit is None:
            yield n
        else:
            with _per_thread_count(_pools()[2], limit):
                yield n

"""The estimators' thread rule: how many threads one fit takes, and holding BLAS to it."""

import contextlib
import os


def _n_threads_default():
    """Threads for one fit when ``n_threads=None`` (see the estimators' docstring)."""
    from joblib.parallel import get_active_backend

    backend, _ = get_active_backend()
    if getattr(backend, "nesting_level", 0) > 0:
        # Inside a joblib worker (GridSearchCV(n_jobs=2), cross_val_score(n_jobs=...)):
        # the other workers already use the other cores.
        return 1
    # joblib's process workers and Dask's workers export OMP_NUM_THREADS (cores / n_jobs,
    # and 1 by default for Dask): honour it.
    cores = os.cpu_count() or 1
    try:
        env = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        env = 0
    return max(1, min(cores, env)) if env > 0 else cores


def _thread_budget(n_threads):
    """Hold BLAS and OpenMP pools to ``n_threads`` while training, when that is a limit.

    The GEMMs of a backend (and of the lbfgs loss) run on a BLAS whose own pool would
    otherwise take every core, on top of the other joblib workers' fits.
    """
    if n_threads >= (os.cpu_count() or 1):
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n_threads)

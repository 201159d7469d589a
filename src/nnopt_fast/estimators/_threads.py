"""The estimators' thread rule: how many threads one fit takes, and holding BLAS to it."""

from ..train.threads import default_estimator_threads, limit_thread_pools, resolve_n_threads


def fit_threads(n_threads):
    """The threads of one fit for the estimators' ``n_threads`` (None: the default rule;
    -1: every available core; more than the cores: clamped with a warning)."""
    return _n_threads_default() if n_threads is None else resolve_n_threads(n_threads)


def _n_threads_default():
    """Threads for one fit when ``n_threads=None`` (see the estimators' docstring)."""
    return default_estimator_threads()


def _thread_budget(n_threads):
    """Hold BLAS and OpenMP pools to ``n_threads`` while training, when that is a limit.

    The GEMMs of a backend (and of the lbfgs loss) run on a BLAS whose own pool would
    otherwise take every core, on top of the other joblib workers' fits.
    """
    return limit_thread_pools(n_threads)

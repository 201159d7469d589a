"""The diagnosis tools' fits of nnopt_fast's MLPs, trained together as one group.

Every tool runs a batch of fits of one estimator: bootstrap rounds, folds, parameter
values. When the estimator is nnopt_fast's MLPClassifier or MLPRegressor, or a Pipeline
ending in one (:func:`nnopt_fast.estimators._group.groupable`), the batch trains as one
group (:func:`nnopt_fast.train.group.run_group`): the models split among threads of this
process, a few of them per compiled call, X held once. Each fit ends exactly as the
clone's ``fit`` would have ended, so the tools report the same numbers either way.

Where the group runs follows joblib's active backend: with joblib's own local backends
(the default, ``loky``, ``threading``, ``multiprocessing``), in this process on
``n_jobs`` threads (None: every core; process workers would only add their start-up
and the copies of the data); with any other backend (``dask``, ...), as joblib tasks,
each a group of fits, which that backend runs where it runs them.
"""

import joblib
import numpy as np
from joblib import delayed
from joblib.parallel import get_active_backend

from ..estimators._group import group_fit, groupable, run_members
from ..train.threads import available_cores
from ._common import Clones, capture_warnings, run_parallel, take, timed_fit

__all__ = ["check_group", "run_fits", "fit_all", "placement"]

#: Tasks per worker when groups go to another joblib backend.
TASKS_PER_WORKER = 2
#: Bytes of transformed training rows a group of Pipeline fits may hold at once.
PIPELINE_BYTES = 1 << 28


def check_group(group):
    """Validate the tools' ``group`` argument."""
    if not isinstance(group, (bool, np.bool_)):
        raise TypeError(f"group must be True or False, got {group!r}")
    return bool(group)


def _local_backend(backend):
    from joblib._parallel_backends import (LokyBackend, MultiprocessingBackend,
                                           SequentialBackend, ThreadingBackend)

    return isinstance(backend, (LokyBackend, MultiprocessingBackend, SequentialBackend,
                                ThreadingBackend))


def _threads(n_jobs):
    """The threads ``n_jobs`` means for a group in this process (joblib's counting:
    None and -1 every core, -2 all but one, ...)."""
    cores = available_cores()
    if n_jobs is None:
        return cores
    n = int(n_jobs)
    if n < 0:
        n = cores + 1 + n
    return max(1, min(cores, n))


def placement(n_jobs):
    """Where a batch of grouped fits runs: ``("here", n_threads)`` or ``("tasks",
    n_tasks)`` (see the module docstring)."""
    backend, context_jobs = get_active_backend()
    n_jobs = context_jobs if n_jobs is None else n_jobs
    if _local_backend(backend):
        if getattr(backend, "nesting_level", 0) > 0:  # inside a joblib worker
            return "here", 1
        return "here", _threads(n_jobs)
    workers = joblib.effective_n_jobs(-1 if n_jobs is None else n_jobs)
    return "tasks", max(1, TASKS_PER_WORKER * workers)


def _chunks(items, n):
    n = max(1, min(n, len(items)))
    bounds = np.linspace(0, len(items), n + 1).round().astype(int)
    return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def run_fits(estimator, items, one, many, args, n_jobs, progress, desc, group=True):
    """The results of one fit per item, in order: ``one(estimator, item, *args)`` per
    joblib task (the one-fit-per-task path), or ``many(estimator, items, *args,
    n_threads)`` for groups of them when :func:`groupable` and ``group``. Both return
    ``(result, caught_warnings)`` per item; the warnings are issued once per message
    (:func:`run_parallel`)."""
    if not (group and groupable(estimator)):
        return run_parallel((delayed(one)(estimator, item, *args) for item in items),
                            n_jobs, progress, desc)
    where, n = placement(n_jobs)
    if where == "here":
        pieces = _chunks(items, 10 if progress else _pipeline_chunks(estimator, args, items))
        tasks = [delayed(many)(estimator, piece, *args, n) for piece in pieces]
        return run_parallel(tasks, 1, progress, desc, grouped=True)
    tasks = [delayed(many)(estimator, piece, *args, 1) for piece in _chunks(items, n)]
    return run_parallel(tasks, n_jobs, progress, desc, grouped=True)


def _pipeline_chunks(estimator, args, items):
    """Groups to split a batch into so that a Pipeline's transformed rows (one copy per
    fit) stay under :data:`PIPELINE_BYTES`; 1 for a plain MLP, whose fits share X."""
    if getattr(estimator, "steps", None) is None:
        return 1
    X = args[0]
    per_fit = 8 * int(np.prod(np.shape(X)))
    return -(-per_fit * len(items) // PIPELINE_BYTES)


def fit_all(estimator, fits, X, y, n_threads):
    """Fit a clone of ``estimator`` for every ``(params, rows, seed)`` of ``fits`` on
    rows ``rows`` of (X, y), as :func:`~nnopt_fast.diagnosis._common.prepare` and ``fit``
    would, the groupable ones as one group on ``n_threads`` threads.

    Returns
    -------
    list of (estimator, seconds, caught_warnings)
        The fitted clones in order. A fit the group cannot reproduce, or that failed in
        it (a divergence), is run by its ``fit`` (which then raises or warns as always).
    """
    shared, prepared, clones = {}, [], Clones(estimator)
    for params, rows, seed in fits:
        est, caught = clones.make(params, seed), []
        with capture_warnings(caught):
            member = group_fit(est, X, y, rows, shared)
        prepared.append((est, member, caught))
    errors = run_members([member for _, member, _ in prepared], n_threads)
    out = []
    for k, ((params, rows, seed), (est, member, caught)) in enumerate(zip(fits, prepared)):
        with capture_warnings(caught):
            fitted = member.finish(errors[k]) if member is not None else None
            if fitted is None:
                fitted = clones.make(params, seed)
                seconds = timed_fit(fitted, X if rows is None else take(X, rows),
                                    y if rows is None else y[rows])
            else:
                seconds = member.seconds
        out.append((fitted, seconds, caught))
    return out


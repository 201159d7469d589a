"""The group epoch: one epoch of each of many models in one call, on every backend."""

import time
from typing import NamedTuple

import numpy as np

from .codes import STATUS
from .epoch import check_epoch, is_sparse

__all__ = ["GroupJob", "GroupWorkspace", "run_group_epoch", "group_epoch_kind"]


class GroupJob(NamedTuple):
    """One model's epoch in a group: the arguments of its backend's ``run_epoch``.

    Attributes
    ----------
    cfg : nnopt_fast.train.TrainConfig
        ``cfg.n_threads > 1`` runs this model's threaded epoch (its own team of threads)
        instead of the group's one-thread loop.
    state : nnopt_fast.train.TrainState
    X, T, sw : arrays
        The model's training data, as ``run_epoch`` takes them; models may share them
        (a bootstrap is an index set in ``perm``, or integer counts in ``sw``).
    perm : ndarray of int
        The epoch's sample order: rows of X, repeats allowed.
    lr : float
    step0 : int
        Global step of the epoch's first batch (keys the dropout masks).
    """

    cfg: object
    state: object
    X: object
    T: object
    sw: object
    perm: np.ndarray
    lr: float
    step0: int


class GroupWorkspace:
    """The batch workspace of one thread of a group, which every model it runs uses in
    turn (the serial epoch keeps nothing in it between batches): one buffer per dtype,
    grown to the largest plan seen, its start on a 64-byte boundary."""

    def __init__(self):
        self._buffers = {}

    def get(self, dtype, size):
        """A buffer of at least ``size`` entries of ``dtype``."""
        dt = np.dtype(dtype)
        buf = self._buffers.get(dt)
        if buf is None or buf.size < size:
            from .cython_backend import _ALIGN_BYTES, _aligned_zeros

            buf = self._buffers[dt] = _aligned_zeros((1, size), dt, _ALIGN_BYTES)[0]
        return buf


def _zero_weight(n_steps):
    # The words of kernels.epoch.make_run_epoch, so that a model fails alike in a group.
    return ZeroDivisionError(f"batch {int(n_steps)} of the epoch has zero total sample "
                             f"weight")


def _interrupted():
    return (0.0, 0.0, 0, STATUS["interrupted"], 0.0)


def _alone(backend, job, stop):
    """``job`` through its backend's public ``run_epoch``, as an outcome (see
    :func:`run_group_epoch`); not started once ``stop`` is raised."""
    if stop[0] or stop[1]:
        return _interrupted()
    t0 = time.perf_counter()
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            out = backend.run_epoch(job.cfg, job.state, job.X, job.T, job.sw, job.perm,
                                    job.lr, job.step0)
    except ZeroDivisionError as err:
        return err
    except KeyboardInterrupt:
        # A threaded epoch that saw its stop flag: the group decides what follows.
        return _interrupted()
    return (*out, time.perf_counter() - t0)


def _cython_serial(jobs, stop, workspace):
    """The one-thread epochs of ``jobs`` in one nogil call per dtype (``nn_group_serial``)."""
    from . import _cython
    from .cython_backend import layout

    outcomes = [None] * len(jobs)
    by_dtype = {}
    for i, job in enumerate(jobs):
        plan, data, perm = check_epoch(job.cfg, job.state, job.X, job.T, job.sw, job.perm,
                                       layout(job.cfg, is_sparse(job.X)))
        cached = job.state.workspace.get("group")
        if cached is None or cached[0] is not plan:
            # The C struct of the plan; kernels.plan.plan_for drops it with its plan.
            cached = job.state.workspace["group"] = (plan, _cython.CPlan(plan))
        epoch = _cython.Epoch(cached[1], job.state, data, perm, float(job.lr),
                              int(job.step0), stop)
        by_dtype.setdefault(job.state.params.dtype, []).append((i, epoch, plan.work_size))
    for dtype, items in by_dtype.items():
        work = workspace.get(dtype, max(size for _, _, size in items))
        results = _cython.Group([epoch for _, epoch, _ in items], work).run()
        for (i, _, _), out in zip(items, results):
            outcomes[i] = (_zero_weight(out[2]) if out[3] == STATUS["zero_weight"]
                           else out)
    return outcomes


def _loop_serial(backend, jobs, stop):
    """The one-thread epochs of ``jobs``, one ``run_epoch`` call each: the NumPy
    reference's group epoch (the spec), and the Numba backend's until it has a group
    loop of its own.

    NUMBA-GROUP: the Numba backend's serial epoch releases the GIL, so a group's threads
    already run its models in parallel through here; a compiled Numba loop over the
    models (as ``_cython_serial``) replaces this by an entry in :data:`_SERIAL`.
    """
    return [_alone(backend, job, stop) for job in jobs]


#: The group epoch of each backend's one-thread models, by ``BACKEND_NAME``; others
#: loop over ``run_epoch``.
_SERIAL = {"cython": lambda backend, jobs, stop, workspace: _cython_serial(jobs, stop,
                                                                          workspace)}


def group_epoch_kind(backend):
    """``"compiled"`` if ``backend`` runs a group's models in one compiled call, else
    ``"loop"`` (one ``run_epoch`` call per model)."""
    return "compiled" if getattr(backend, "BACKEND_NAME", None) in _SERIAL else "loop"


def run_group_epoch(backend, jobs, stop, workspace=None):
    """One epoch of every job, on the calling thread (or, for a job whose
    ``cfg.n_threads > 1``, on that job's own team).

    Each model runs exactly the serial epoch it runs alone (``backend.run_epoch`` with
    one thread): the same plan, the same batch step, in its own state, so that it ends
    bit for bit where training it alone ends. The Cython backend runs the one-thread
    models back to back in one call that holds no GIL; the others call ``run_epoch``
    once per model.

    Parameters
    ----------
    backend : module
        A backend of :func:`nnopt_fast.kernels.get_backend`.
    jobs : sequence of GroupJob
    stop : ndarray of int32, shape (2,)
        The group's stop flag (:func:`nnopt_fast.kernels.team.new_stop_flag`): a model
        polls it after every batch, and one not started yet is not started.
    workspace : GroupWorkspace or None
        The calling thread's workspace (None: a new one).

    Returns
    -------
    list
        Per job, in order: ``(data_loss, penalty_loss, n_steps, status, seconds)`` as
        ``run_epoch`` returns them plus the seconds of the epoch, ``status`` one of
        ``STATUS`` "ok", "nonfinite" or "interrupted" (the stop flag ended it; its
        state is then partly updated); or the ``ZeroDivisionError`` of a model one of
        whose batches has zero total sample weight (its batches before it were applied).

    Raises
    ------
    TypeError, ValueError
        For arguments ``run_epoch`` refuses (see
        :func:`nnopt_fast.kernels.epoch.check_epoch`), before any model runs.
    """
    jobs = list(jobs)
    serial = [i for i, job in enumerate(jobs) if job.cfg.n_threads <= 1]
    outcomes = [None] * len(jobs)
    compiled = _SERIAL.get(getattr(backend, "BACKEND_NAME", None))
    if compiled is not None and serial:
        done = compiled(backend, [jobs[i] for i in serial], stop,
                        workspace if workspace is not None else GroupWorkspace())
    else:
        done = _loop_serial(backend, [jobs[i] for i in serial], stop)
    for i, out in zip(serial, done):
        outcomes[i] = out
    for i, job in enumerate(jobs):
        if outcomes[i] is None:
            outcomes[i] = _alone(backend, job, stop)
    return outcomes

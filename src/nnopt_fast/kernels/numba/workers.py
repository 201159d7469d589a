"""The compiled epochs of the Numba backend: the serial epoch and the threaded workers."""

from typing import NamedTuple

import numpy as np

from .._numba_config import jit
from .barrier import atomic_cas, barrier_wait, load_relaxed, store_relaxed
from .borrow import borrow
from .scalar import INTERRUPTED, NONFINITE, OK, ZERO_WEIGHT
from .step import Rows, batch_rows, batch_step, batch_weight, gradient_rows, prefetch_rows
from .updates import penalty_value, slice_rows, step_coeffs, update_chunk

__all__ = ["Team", "SLOT", "serial_loop", "sync_worker", "hogwild_worker",
           "team_result"]

#: Doubles per thread in a team's slot table: 128 bytes, so no two threads write one line.
SLOT = 16
# What each thread's slot holds.
_LOSS, _PENALTY, _DATA, _STEPS = 0, 1, 2, 3
# The team's int32 flags: the first non-OK status a worker met; thread 0's reading of
# stop[0], shared through the barrier (sync).
_STATUS, _HALT = 0, 1


class Team(NamedTuple):
    """The shared state of a threaded epoch's team.

    ``barrier``: int32 words of :func:`barrier_wait`; ``flags``: int32 (status, halt);
    ``slots``: float64 (n_threads, SLOT), slot t thread t's sums; ``slice_grads``: the
    sync slices' gradients, (n_threads, >= n_params), laid out like the parameters.
    """

    barrier: np.ndarray
    flags: np.ndarray
    slots: np.ndarray
    slice_grads: np.ndarray


@jit(helper=True)
def _stopped(stop):
    return load_relaxed(stop, 0) != 0 or load_relaxed(stop, 1) != 0


@jit(helper=True)
def _set_status(team, status):
    """The first non-OK status of a team wins (a later one reports the same void epoch)."""
    atomic_cas(team.flags, _STATUS, OK, status)


@jit
def serial_loop(plan, state, data, work, epoch):
    """The batch loop of the serial epoch: :func:`batch_step` on every batch of
    ``epoch.perm`` (:class:`Epoch`).

    ``state``: :class:`TrainArrays`; ``data``: :class:`.sparse.TrainData`
    (``sw`` empty without sample weights); ``work``: the plan's flat workspace.
    The stop flag is polled before each batch. Returns ``(data_loss, penalty_loss,
    n_steps, status)`` as the reference's ``run_epoch``.
    """
    plan, state, data, work, epoch = borrow((plan, state, data, work, epoch))
    n_batches = -(-epoch.perm.shape[0] // plan.batch_size)
    data_loss = 0.0
    penalty = 0.0
    for k in range(n_batches):
        if _stopped(epoch.stop):
            return data_loss, penalty, k, INTERRUPTED
        if k + 1 < n_batches:
            prefetch_rows(plan, data, batch_rows(plan, epoch, k + 1))
        status, dl, pl = batch_step(plan, state, data, work, epoch, k)
        if status != OK:
            return data_loss, penalty, k, status
        data_loss += dl
        penalty += pl
    return data_loss, penalty, n_batches, OK


@jit
def sync_worker(plan, state, data, work, team, epoch, tid):
    """Thread ``tid`` of a deterministic data-parallel epoch (the two halves of
    :func:`batch_step`, split by barriers).

    Per batch: 1. slice ``tid`` (rows ``nb tid / T .. nb (tid+1) / T``) runs forward
    and backward in its rows of the shared workspace, with the dropout masks of the
    serial loop, into its row of ``team.slice_grads``; barrier. 2. Every thread sums the
    slice losses in slice order (all agree on divergence); thread ``tid`` sums the
    slices' gradients over chunk ``tid`` of every parameter segment and steps it
    (:func:`update_chunk`); thread 0 publishes ``stop[0]``; barrier; all read it and end
    the epoch there (status ``interrupted``). The layout depends on T alone: the result
    is reproducible. Sums go to ``team.slots``, the first non-OK status to ``team.flags``.
    """
    plan, state, data, work, team, epoch = borrow((plan, state, data, work, team, epoch))
    T = team.slots.shape[0]
    n_batches = -(-epoch.perm.shape[0] // plan.batch_size)
    mine = team.slots[tid]
    grads = team.slice_grads[tid, :state.params.shape[0]]
    want_penalty = plan.l2 != 0.0 or plan.l1 != 0.0
    k = 0
    while k < n_batches:
        idx = batch_rows(plan, epoch, k)
        nb = idx.shape[0]
        S = batch_weight(data, idx)
        if S == 0.0:
            # Every thread sees the same sum and leaves here: none waits at a barrier.
            if tid == 0:
                _set_status(team, ZERO_WEIGHT)
            break
        coeffs = step_coeffs(plan, S, epoch.lr, epoch.t0 + k + 1)
        r0, r1 = slice_rows(nb, tid, T)
        if k + 1 < n_batches:
            nxt = batch_rows(plan, epoch, k + 1)
            q0, q1 = slice_rows(nxt.shape[0], tid, T)
            prefetch_rows(plan, data, nxt[q0:q1])
        ls = 0.0
        if r1 > r0:
            ls = gradient_rows(plan, state.params, grads, data, work,
                               Rows(idx[r0:r1], r0, epoch.step0 + k), coeffs.scale)
        mine[_LOSS] = ls
        if barrier_wait(team.barrier, epoch.stop):
            return
        lsum = 0.0
        for s in range(T):
            lsum += team.slots[s, _LOSS]
        if not np.isfinite(lsum):
            if tid == 0:
                _set_status(team, NONFINITE)
            break
        if tid == 0:
            mine[_DATA] += nb * (lsum / S)
        s2, s1 = update_chunk(plan, state, team.slice_grads, nb, tid, T, coeffs)
        if want_penalty:
            mine[_PENALTY] += nb * penalty_value(plan, s2, s1, coeffs.d)
        if tid == 0:
            store_relaxed(team.flags, _HALT, load_relaxed(epoch.stop, 0))
        if barrier_wait(team.barrier, epoch.stop):
            return
        k += 1
        if load_relaxed(team.flags, _HALT) != 0:
            if tid == 0:
                _set_status(team, INTERRUPTED)
            break
    if tid == 0:
        mine[_STEPS] = k


@jit
def hogwild_worker(plan, state, data, work, team, epoch, tid):
    """Thread ``tid`` of a Hogwild epoch: batches ``tid, tid + T, ...`` with full
    :func:`batch_step` s on the shared parameters and optimizer state, without locks.

    ``state`` has the thread's own gradient buffer and ``work`` is its own workspace;
    the dropout keys and Adam's update number come from the global batch number, as in
    the serial loop: only the weights each step sees differ (they race with the other
    threads). The stop flag and the team's status are polled before each batch.
    """
    plan, state, data, work, team, epoch = borrow((plan, state, data, work, team, epoch))
    T = team.slots.shape[0]
    n_batches = -(-epoch.perm.shape[0] // plan.batch_size)
    data_loss = 0.0
    penalty = 0.0
    steps = 0
    for k in range(tid, n_batches, T):
        if load_relaxed(team.flags, _STATUS) != OK:
            break
        if _stopped(epoch.stop):
            _set_status(team, INTERRUPTED)
            break
        if k + T < n_batches:
            prefetch_rows(plan, data, batch_rows(plan, epoch, k + T))
        status, dl, pl = batch_step(plan, state, data, work, epoch, k)
        if status != OK:
            _set_status(team, status)
            break
        data_loss += dl
        penalty += pl
        steps += 1
    mine = team.slots[tid]
    mine[_DATA] = data_loss
    mine[_PENALTY] = penalty
    mine[_STEPS] = steps


def team_result(team):
    """``(data_loss, penalty_loss, n_steps, status)`` of a team's epoch, its threads' sums
    added in thread order."""
    data_loss = penalty = 0.0
    n_steps = 0
    for slot in team.slots:
        data_loss += float(slot[_DATA])
        penalty += float(slot[_PENALTY])
        n_steps += int(slot[_STEPS])
    return data_loss, penalty, n_steps, int(team.flags[_STATUS])

"""The group driver: the epochs of many models at once, on threads that split the models."""

import collections
import dataclasses
import threading
from typing import NamedTuple


from ..kernels.group import GroupJob, GroupWorkspace, run_group_epoch
from ..kernels.team import new_stop_flag, run_team
from .loop import DivergenceError, run_driver
from .threads import PARALLEL_BACKENDS, choose_mode, thread_budget

__all__ = ["Member", "run_group"]


class Member(NamedTuple):
    """One model of a group: its epoch driver and the data its epochs run on.

    Attributes
    ----------
    driver : nnopt_fast.train.loop.EpochDriver
        The model's epochs (its config, state, schedule, sample order and hooks).
    X, T, sw : arrays
        As ``run_epoch`` takes them; members may share them (the driver's ``rows`` pick
        a member's rows of a shared X).
    """

    driver: object
    X: object
    T: object
    sw: object


def _epoch_cfg(cfg, backend_name, n_samples, alone):
    """The config a member's epochs run with inside a group: its own threaded epoch
    (``cfg.n_threads`` threads) only where :func:`choose_mode` gives it the ``"data"``
    mode and that epoch runs on a team of its own (the Cython backend); else one thread
    (BLAS, shared by the whole process, stays single-threaded under a group)."""
    if cfg.n_threads <= 1 or alone:
        return cfg
    if backend_name == "cython" and choose_mode(cfg, backend_name, n_samples) == "data":
        return cfg
    return dataclasses.replace(cfg, n_threads=1)


def _solo(backend, member):
    """One member alone: exactly :func:`nnopt_fast.train.loop.run_epochs` (its thread
    budget included), in the calling thread."""
    run_driver(backend, member.driver, member.X, member.T, member.sw)


class _Queue:
    """The members whose next epoch may start, shared by the lanes (the threads of a
    group), and what the lanes have in flight."""

    def __init__(self, n_members, n_lanes):
        self.ready = collections.deque(range(n_members))
        self.busy = 0
        self.n_lanes = n_lanes
        self.cond = threading.Condition()

    def take(self, stop):
        """The next members for a lane: about a lane's share of the ready ones (so that
        one call runs several models); [] when the group is done or stopped."""
        with self.cond:
            while not self.ready and self.busy and not (stop[0] or stop[1]):
                # A member in flight on another lane comes back after its epoch.
                self.cond.wait(0.05)
            if stop[0] or stop[1] or not self.ready:
                return []
            n = max(1, -(-len(self.ready) // self.n_lanes))
            taken = [self.ready.popleft() for _ in range(min(n, len(self.ready)))]
            self.busy += len(taken)
            return taken

    def give_back(self, taken, again):
        with self.cond:
            self.busy -= len(taken)
            self.ready.extend(again)
            self.cond.notify_all()


def _lane(backend, members, cfgs, queue, errors, stop):
    """One thread of a group: takes members from ``queue``, runs one epoch of each in
    one group call, hands back those that go on."""
    workspace = GroupWorkspace()
    while True:
        taken = queue.take(stop)
        if not taken:
            return
        started, again = [], []
        try:
            jobs = []
            for k in taken:
                d = members[k].driver
                perm, rate = d.start()
                started.append(k)
                m = members[k]
                jobs.append(GroupJob(cfgs[k], d.state, m.X, m.T, m.sw, perm, rate,
                                     d.state.step))
            outcomes = run_group_epoch(backend, jobs, stop, workspace)
        except BaseException:
            stop[0] = 1
            for k in started:
                members[k].driver.abort()
            queue.give_back(taken, [])
            raise
        try:
            for i, (k, out) in enumerate(zip(taken, outcomes)):
                if _settle(members[k].driver, out, errors, k):
                    again.append(k)
        except BaseException:
            stop[0] = 1
            for k, out in zip(taken[i + 1:], outcomes[i + 1:]):
                members[k].driver.abort()
            raise
        finally:
            queue.give_back(taken, again)


def _settle(driver, out, errors, k):
    """End member ``k``'s epoch with its group outcome; True if it trains on.

    A diverged model and one with a zero-weight batch stop, with the state of their
    epoch's start, and their error goes to ``errors[k]``; an interrupted epoch is undone
    likewise (the group then ends). Other errors (a callback's) propagate.
    """
    if isinstance(out, ZeroDivisionError):
        errors[k] = driver.abort(out)
        return False
    if out[3] == 3:  # STATUS["interrupted"]
        driver.abort()
        return False
    try:
        return not driver.finish(out[:4], out[4])
    except DivergenceError as err:
        errors[k] = err
        return False


def run_group(backend, members, n_threads):
    """Train every member to its end: each epoch of each model through its own
    :class:`~nnopt_fast.train.loop.EpochDriver`, the models split among ``n_threads``
    threads and run a few at a time by one call of the backend's group epoch
    (:func:`nnopt_fast.kernels.group.run_group_epoch`).

    A member alone runs as :func:`nnopt_fast.train.loop.run_epochs` runs it. Otherwise
    each member's epoch runs on one thread (BLAS single-threaded), bit for bit as it
    would alone on one thread, except members whose config asks for more threads and
    gets the threaded epoch from :func:`~nnopt_fast.train.threads.choose_mode`: they
    run it on a team of their own (Cython backend). A lane runs the Python side of its
    members' epochs (sample orders, schedules, callbacks) while the others compute.

    Parameters
    ----------
    backend : module
    members : sequence of Member
    n_threads : int >= 1
        The threads that split the members (one per member at most; one for a backend
        without a compiled epoch, whose models hold the GIL).

    Returns
    -------
    list
        Per member, None, or the error that stopped it: a
        :class:`~nnopt_fast.train.loop.DivergenceError` or the ``ValueError`` of a batch
        of zero total weight (the model keeps the state of that epoch's start).

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C; every model keeps the state of the start of the epoch it was in (or the
        end of its last one).
    Exception
        The first error of a member's Python side (a callback), once every thread has
        stopped; the other members stop likewise.
    """
    members = list(members)
    errors = [None] * len(members)
    if not members:
        return errors
    name = getattr(backend, "BACKEND_NAME", None)
    if len(members) == 1:
        try:
            _solo(backend, members[0])
        except DivergenceError as err:
            errors[0] = err
        except ValueError as err:
            if not isinstance(err.__cause__, ZeroDivisionError):
                raise
            errors[0] = err
        return errors
    lanes = min(int(n_threads), len(members)) if name in PARALLEL_BACKENDS else 1
    cfgs = [_epoch_cfg(m.driver.cfg, name, m.driver.m, False) for m in members]
    one = dataclasses.replace(members[0].driver.cfg, n_threads=1)
    stop = new_stop_flag()
    queue = _Queue(len(members), lanes)
    with thread_budget(one, backend):
        run_team(lambda tid: _lane(backend, members, cfgs, queue, errors, stop), lanes,
                 stop)
    return errors

"""The epochs of the Numba backend as ``kernels.epoch.make_run_epoch`` calls them: the run's
buffers, the compiled serial epoch, and the thread teams of the threaded ones."""

import numpy as np

from ..plan import WORK_ALIGN_BYTES
from ..team import run_team
from .barrier import BARRIER_WORDS, barrier_init
from .sparse import train_data
from .updates import TrainArrays
from .step import Epoch
from .workers import SLOT, Team, hogwild_worker, serial_loop, sync_worker, team_result

__all__ = ["serial_epoch", "parallel_epoch"]

#: Per-thread buffers and the team's tables start on, and are padded to, 128 bytes (two
#: cache lines: x86 cores prefetch lines in adjacent pairs), so no two threads ever
#: write one line.
_THREAD_ALIGN_BYTES = 128


def _aligned_rows(n_rows, n_cols, dtype, align):
    """Zeros of shape (n_rows, stride >= n_cols) whose rows each start on an ``align``-byte
    boundary (``stride`` a multiple of ``align`` bytes)."""
    dt = np.dtype(dtype)
    row_bytes = -(-max(int(n_cols), 1) * dt.itemsize // align) * align
    raw = np.zeros(n_rows * row_bytes + align, dtype=np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + n_rows * row_bytes].view(dt).reshape(n_rows, -1)


class _Workspace:
    """The buffers of one training run on this backend, made on its first epoch.

    ``work``: the plan's flat workspace (the serial epoch's, which the sync threads share,
    each its own rows); per thread count, the sync team and its slices' gradients, or
    the Hogwild team with a workspace and a gradient buffer per thread.
    """

    def __init__(self, plan, dtype):
        self.plan = plan
        self.dtype = np.dtype(dtype)
        self.work = _aligned_rows(1, plan.work_size, dtype, WORK_ALIGN_BYTES)[0]
        self._sync = {}
        self._hogwild = {}

    def _team(self, n_threads, slice_grads):
        return Team(barrier=_aligned_rows(1, BARRIER_WORDS, np.int32, _THREAD_ALIGN_BYTES)[0],
                    flags=_aligned_rows(1, 32, np.int32, _THREAD_ALIGN_BYTES)[0],
                    slots=_aligned_rows(n_threads, SLOT, np.float64, _THREAD_ALIGN_BYTES),
                    slice_grads=slice_grads)

    @staticmethod
    def _reset(team):
        barrier_init(team.barrier, team.slots.shape[0])
        team.flags[:] = 0
        team.slots[:] = 0.0
        return team

    def sync_team(self, n_threads, n_params):
        if n_threads not in self._sync:
            grads = _aligned_rows(n_threads, n_params, self.dtype, _THREAD_ALIGN_BYTES)
            self._sync[n_threads] = self._team(n_threads, grads)
        return self._reset(self._sync[n_threads])

    def hogwild_team(self, n_threads, n_params):
        """The team, and per thread a workspace and a gradient buffer."""
        if n_threads not in self._hogwild:
            self._hogwild[n_threads] = (
                self._team(n_threads, np.zeros((0, 0), self.dtype)),
                _aligned_rows(n_threads, self.plan.work_size, self.dtype, _THREAD_ALIGN_BYTES),
                _aligned_rows(n_threads, n_params, self.dtype, _THREAD_ALIGN_BYTES))
        team, works, grads = self._hogwild[n_threads]
        return self._reset(team), works, grads


def _workspace(plan, state):
    ws = state.workspace.get("numba")
    if ws is None or ws.plan is not plan:
        ws = state.workspace["numba"] = _Workspace(plan, state.params.dtype)
    return ws


def _arrays(state):
    return TrainArrays(state.params, state.grads, state.velocity, state.m, state.v)


def _epoch(state, perm, lr, step0, stop):
    return Epoch(perm, float(lr), int(step0), int(state.t), stop)


def serial_epoch(cfg, plan, state, data, perm, lr, step0, stop):
    """The one-thread epoch (``kernels.epoch.make_run_epoch``'s ``serial``)."""
    ws = _workspace(plan, state)
    return serial_loop(plan, _arrays(state), train_data(data), ws.work,
                         _epoch(state, perm, lr, step0, stop))


def parallel_epoch(cfg, plan, state, data, perm, lr, step0, stop):
    """The sync data-parallel or Hogwild epoch on ``cfg.n_threads`` threads
    (``make_run_epoch``'s ``parallel``). BLAS must be single-threaded meanwhile
    (``nnopt_fast.train.threads`` arranges it)."""
    ws = _workspace(plan, state)
    n = int(cfg.n_threads)
    arrays, data = _arrays(state), train_data(data)
    epoch = _epoch(state, perm, lr, step0, stop)
    if cfg.parallel == "hogwild":
        team, works, grads = ws.hogwild_team(n, state.params.size)
        own = [arrays._replace(grads=grads[tid, :state.params.size]) for tid in range(n)]
        run_team(lambda tid: hogwild_worker(plan, own[tid], data, works[tid, :plan.work_size],
                                            team, epoch, tid), n, stop)
    else:
        team = ws.sync_team(n, state.params.size)
        run_team(lambda tid: sync_worker(plan, arrays, data, ws.work, team, epoch, tid), n,
                 stop)
    return team_result(team)

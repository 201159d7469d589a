"""The Numba backend's thread team: its barrier, an aborted team, a stop during an epoch.

Every test runs in a fresh interpreter with a timeout, so a barrier that never opens
fails the test instead of hanging the suite.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nnopt_fast as nf
from nnopt_fast.train.threads import available_cores

needs_2_cores = pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores")


def _run_python(code, timeout=300):
    """Run ``code`` in a fresh interpreter; its last stdout line parsed as JSON."""
    env = dict(os.environ, PYTHONPATH=str(Path(nf.__file__).parent.parent))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


_BARRIER = """
    import json, threading, time
    import numba
    import numpy as np
    from nnopt_fast.kernels.numba.barrier import BARRIER_WORDS, barrier_init, barrier_wait

    @numba.njit(nogil=True)
    def rounds(barrier, stop, seen, tid, n_rounds):
        # Each round: publish the round number, meet, read the partner's, meet again.
        # Returns how many rounds showed the partner a round behind, or -1 if aborted.
        stale = 0
        for r in range(n_rounds):
            seen[tid] = r
            if barrier_wait(barrier, stop):
                return -1
            if seen[1 - tid] != r:
                stale += 1
            if barrier_wait(barrier, stop):
                return -1
        return stale

    def team(n_threads, n_rounds, stop):
        barrier = np.zeros(BARRIER_WORDS, np.int32)
        barrier_init(barrier, 2)
        seen = np.zeros(2, np.int64)
        out = [None, None]
        def run(tid):
            out[tid] = int(rounds(barrier, stop, seen, tid, n_rounds))
        threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
        for t in threads:
            t.start()
        return threads, out
"""


@needs_2_cores
def test_barrier_meets_every_round_and_publishes_writes():
    res = _run_python(_BARRIER + """
    stop = np.zeros(2, np.int32)
    threads, out = team(2, 20000, stop)
    for t in threads:
        t.join()
    print(json.dumps({"stale": out}))
    """)
    assert res["stale"] == [0, 0]


def test_barrier_of_an_aborted_team_returns():
    # One of two threads never arrives: raising stop[1] releases the one that waits.
    res = _run_python(_BARRIER + """
    stop = np.zeros(2, np.int32)
    rounds(np.zeros(BARRIER_WORDS, np.int32), stop, np.zeros(2, np.int64), 0, 0)  # compile
    threads, out = team(1, 5, stop)
    time.sleep(0.3)
    waiting = threads[0].is_alive()
    stop[1] = 1
    threads[0].join(60)
    print(json.dumps({"waiting": waiting, "alive": threads[0].is_alive(), "out": out[0]}))
    """)
    assert res["waiting"] and not res["alive"]
    assert res["out"] == -1


_EPOCH = """
    import json, threading
    import numpy as np
    import nnopt_fast as nf
    from nnopt_fast.kernels import get_backend
    from nnopt_fast.kernels.codes import STATUS
    from nnopt_fast.kernels.epoch import check_epoch
    from nnopt_fast.kernels.team import new_stop_flag
    from nnopt_fast.train.loop import make_config
    from nnopt_fast.train.state import TrainState

    be = get_backend("numba")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 16))
    y = rng.integers(0, 3, 400)
    B = 4

    def setup(n, parallel):
        net = nf.MLP((16, 12, 3), dtype=np.float64, random_state=0)
        cfg = make_config(net, batch_size=B, n_samples=len(X), l2=0.1, dropout=0.2, seed=1,
                          n_threads=2, parallel=parallel, thread_mode="data")
        state = TrainState(net, cfg)
        perm = np.resize(np.arange(len(X), dtype=np.int64), n)
        return cfg, state, perm

    def epoch(parallel, n, stop_after=None):
        cfg, state, perm = setup(n, parallel)
        plan, data, perm = check_epoch(cfg, state, X, y, None, perm)
        stop = new_stop_flag()
        if stop_after is not None:
            threading.Timer(stop_after, stop.__setitem__, (0, 1)).start()
        out = be.parallel_epoch(cfg, plan, state, data, perm, 0.05, 0, stop)
        return out, state.net.params.copy()

    epoch("sync", 2 * B)  # compile outside the timed part
    epoch("hogwild", 4 * B)
"""

#: Batches of the epochs that a stop interrupts: far more than run in the 0.3 s before it.
_LONG = 2_000_000


@needs_2_cores
def test_stop_ends_a_sync_epoch_after_a_whole_batch():
    # The interrupted epoch's weights are those of an epoch of the batches it finished.
    res = _run_python(_EPOCH + f"""
    (data, pen, n_steps, status), params = epoch("sync", {_LONG} * B, stop_after=0.3)
    (_, _, n_again, status_again), again = epoch("sync", n_steps * B)
    print(json.dumps({{"status": status, "interrupted": STATUS["interrupted"],
                      "n_steps": n_steps, "n_again": n_again, "ok": status_again == 0,
                      "same": bool(np.array_equal(params, again))}}))
    """)
    assert res["status"] == res["interrupted"]
    assert 0 < res["n_steps"] < _LONG
    assert res["ok"] and res["n_again"] == res["n_steps"]
    assert res["same"]


@needs_2_cores
def test_stop_ends_a_hogwild_epoch_on_every_worker():
    res = _run_python(_EPOCH + f"""
    (data, pen, n_steps, status), params = epoch("hogwild", {_LONG} * B, stop_after=0.3)
    print(json.dumps({{"status": status, "interrupted": STATUS["interrupted"],
                      "n_steps": n_steps, "finite": bool(np.isfinite(params).all())}}))
    """)
    assert res["status"] == res["interrupted"]
    assert 0 < res["n_steps"] < _LONG
    assert res["finite"]


@needs_2_cores
def test_a_failing_worker_aborts_the_team_and_raises():
    # Worker 1 fails before it reaches the barrier; worker 0, waiting there, is released
    # by the abort flag and the epoch raises the failure instead of hanging.
    res = _run_python(_EPOCH + """
    from nnopt_fast.kernels.numba import driver
    real = driver.sync_worker

    def flaky(plan, state, data, work, team, epoch_, tid):
        if tid == 1:
            raise RuntimeError("worker 1 failed")
        return real(plan, state, data, work, team, epoch_, tid)

    driver.sync_worker = flaky
    try:
        epoch("sync", 100 * B)
        raised = None
    except RuntimeError as exc:
        raised = str(exc)
    print(json.dumps({"raised": raised}))
    """)
    assert res["raised"] == "worker 1 failed"


def test_serial_epoch_polls_the_stop_flag_before_each_batch():
    res = _run_python(_EPOCH + """
    cfg, state, perm = setup(10 * B, "sync")
    plan, data, perm = check_epoch(cfg, state, X, y, None, perm)
    before = state.net.params.copy()
    stop = new_stop_flag()
    stop[0] = 1
    out = be.serial_epoch(cfg, plan, state, data, perm, 0.05, 0, stop)
    print(json.dumps({"out": list(out), "interrupted": STATUS["interrupted"],
                      "unchanged": bool(np.array_equal(before, state.net.params))}))
    """)
    assert res["out"] == [0.0, 0.0, 0, res["interrupted"]]
    assert res["unchanged"]

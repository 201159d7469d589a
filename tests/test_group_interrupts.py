"""Ctrl-C during nf.train_many, and train_many after fork: in subprocesses with a timeout."""

import pytest
from test_fork_and_interrupts import run  # a fresh interpreter, a timeout, a JSON line

from nnopt_fast.train.threads import available_cores

INTERRUPT = """
K = 6
nets = [nf.MLP((64, 256, 256, 10), random_state=k) for k in range(K)]
# The weights before the first epoch and after each one.
ends = [[net.params.copy()] for net in nets]


def keep(k):
    return lambda epoch, net, history: ends[k].append(net.params.copy())


cbs = [[nf.LambdaCallback(on_epoch_end=keep(k))] for k in range(K)]
big, labels = np.tile(X, (20, 1)).astype(np.float32), np.tile(y, 20)
# Compiled (Numba) and warm before the clock starts.
nf.train_many([n.copy() for n in nets[:2]], big[:200], y[:200], epochs=1, batch_size=64,
              dropout=0.1, random_state=[0, 1], n_threads={threads}, backend={backend!r})
threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT)).start()
t0 = time.perf_counter() + 2.0
try:
    nf.train_many(nets, big, labels, epochs=200, batch_size=64, lr=0.01, dropout=0.1,
                  random_state=list(range(K)), n_threads={threads}, callbacks=cbs,
                  backend={backend!r})
    outcome, histories = "finished", None
except nf.TrainingInterrupted as err:
    outcome, histories = "interrupted", err.histories
elapsed = time.perf_counter() - t0
kept = [bool(np.array_equal(net.params, e[h.epochs]))
        for net, e, h in zip(nets, ends, histories or [])]
print(json.dumps({{"outcome": outcome, "elapsed": elapsed, "kept": kept,
                  "finite": all(bool(np.isfinite(n.params).all()) for n in nets),
                  "epochs": [h.epochs for h in histories] if histories else None,
                  "ends": [len(e) - 1 for e in ends]}}))
"""

CASES = [("cython", 1), ("numpy", 1)]
if available_cores() >= 2:
    CASES += [("cython", 2), ("numba", 2)]


@pytest.mark.parametrize("backend, threads", CASES)
def test_ctrl_c_stops_a_group_and_every_model_keeps_its_epoch_start(backend, threads):
    res = run(INTERRUPT.format(backend=backend, threads=threads))
    assert res["outcome"] == "interrupted"
    # 200 epochs of 6 models take many minutes: the run ended soon after the interrupt.
    assert res["elapsed"] < 60
    assert res["finite"]
    # Every model holds the weights of the end of its last finished epoch (the start
    # of the one it was in), and its history holds those epochs.
    assert all(res["kept"]) and len(res["kept"]) == 6
    assert res["epochs"] == res["ends"]


FORK = """
import multiprocessing

K = 4


def fit():
    nets = [nf.MLP((64, 32, 10), random_state=k) for k in range(K)]
    nf.train_many(nets, X, y, epochs=2, random_state=list(range(K)), n_threads=2)
    return np.concatenate([n.params for n in nets])


parent = fit()  # the group's threads ran before the fork
with multiprocessing.get_context("fork").Pool(1) as pool:
    child = pool.apply_async(fit).get(timeout=120)
print(json.dumps({"same": bool(np.array_equal(child, parent))}))
"""


def test_a_forked_child_trains_a_group_like_its_parent():
    assert run(FORK)["same"]

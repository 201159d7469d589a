"""Ctrl-C during nf.train_many, and train_many after fork: in subprocesses with a timeout."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nnopt_fast.train.threads import available_cores

TIMEOUT = 240

PRELUDE = """
import json, os, signal, sys, threading, time
import numpy as np
import nnopt_fast as nf

rng = np.random.default_rng(0)
X = rng.standard_normal((4000, 64)).astype(np.float32)
y = np.argmax(X @ rng.standard_normal((64, 10)), axis=1)
"""


def run(body):
    code = PRELUDE + textwrap.dedent(body)
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"no answer within {TIMEOUT} s (a hang?); stderr so far: {exc.stderr!r}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


INTERRUPT = """
K = 6
nets = [nf.MLP((64, 256, 256, 10), random_state=k) for k in range(K)]
# The weights before the first epoch and after each one.
ends = [[net.params.copy()] for net in nets]


def keep(k):
    return lambda epoch, net, history: ends[k].append(net.params.copy())


cbs = [[nf.LambdaCallback(on_epoch_end=keep(k))] for k in range(K)]
big, labels = np.tile(X, (10, 1)), np.tile(y, 10)
# Compiled (Numba) and warm before the clock starts.
nf.train_many([n.copy() for n in nets[:2]], X[:200], y[:200], epochs=1, batch_size=64,
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
K = 4
def fit():
    nets = [nf.MLP((64, 32, 10), random_state=k) for k in range(K)]
    nf.train_many(nets, X, y, epochs=2, random_state=list(range(K)), n_threads=2)
    return np.concatenate([n.params for n in nets])

parent = fit()
pid = os.fork()
if pid == 0:
    try:
        os._exit(0 if np.array_equal(fit(), parent) else 3)
    except BaseException:
        os._exit(4)
deadline = time.time() + 120
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.time() > deadline:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        status = -1
        break
    time.sleep(0.05)
print(json.dumps({"status": status}))
"""


def test_a_forked_child_trains_a_group_like_its_parent():
    assert run(FORK)["status"] == 0

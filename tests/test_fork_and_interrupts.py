"""Training after fork, and Ctrl-C during a long epoch, on every compiled backend.

Each case runs in a fresh interpreter with a timeout, so that a hang (a thread team that
did not survive fork, an epoch that ignores the stop flag) fails the test instead of
hanging the suite; the script prints one JSON line that the test checks.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from nnopt_fast.train.threads import available_cores

needs_2_cores = pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores")
TIMEOUT = 240
COMPILED = ("cython", "numba")

PRELUDE = """
import json, os, signal, sys, threading, time, warnings
import numpy as np
import nnopt_fast as nf

rng = np.random.default_rng(0)
X = rng.standard_normal((2000, 64))
y = np.argmax(X @ rng.standard_normal((64, 10)), axis=1)


def fit(backend, n_threads, parallel="sync", epochs=2, layers=(64, 256, 10)):
    net = nf.MLP(layers, random_state=0, dtype=np.float64)
    nf.train(net, X, y, epochs=epochs, batch_size=64, lr=0.05, dropout=0.1,
             backend=backend, n_threads=n_threads, thread_mode="data", parallel=parallel,
             random_state=1)
    return net.params
"""


def run(body, timeout=TIMEOUT):
    code = PRELUDE + textwrap.dedent(body)
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"no answer within {timeout} s (a hang?); stderr so far: {exc.stderr!r}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


FORK_CHILD = """
BACKEND = {backend!r}
parent = fit(BACKEND, 2, parallel={parallel!r})  # the parent's threaded epochs ran
pid = os.fork()
if pid == 0:
    # The child trains the same way, threads included: it must neither hang nor die.
    try:
        child = fit(BACKEND, 2, parallel={parallel!r})
        ok = bool(np.isfinite(child).all()) and ({parallel!r} == "hogwild"
                                                or np.array_equal(child, parent))
        os._exit(0 if ok else 3)
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
print(json.dumps({{"status": status}}))
"""


@needs_2_cores
@pytest.mark.parametrize("parallel", ["sync", "hogwild"])
@pytest.mark.parametrize("backend", COMPILED)
def test_a_forked_child_trains_with_threads_after_a_threaded_parent(backend, parallel):
    res = run(FORK_CHILD.format(backend=backend, parallel=parallel))
    # 0: the child trained (sync: bit for bit as the parent did); -1: it hung.
    assert res["status"] == 0, res


POOL = """
import multiprocessing
from sklearn.datasets import make_classification

Xc, yc = make_classification(2000, 100, n_informative=40, n_classes=4, random_state=0)


def default_fit(seed):
    clf = nf.MLPClassifier((256,), max_iter=2, random_state=seed).fit(Xc, yc)
    return float(clf.score(Xc, yc))


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    here = default_fit(0)  # the parent fits first, with its default threads
    with multiprocessing.get_context("fork").Pool(2) as pool:
        res = pool.map_async(default_fit, [0, 1])
        scores = res.get(timeout=150)
print(json.dumps({"here": here, "scores": scores}))
"""


def test_a_fork_pool_runs_default_fits_after_the_parent_fitted():
    res = run(POOL)
    assert res["scores"][0] == res["here"]  # the same fit, in a child
    assert 0.0 <= res["scores"][1] <= 1.0


INTERRUPT = """
from nnopt_fast.kernels import get_backend
from nnopt_fast.train.loop import make_config
from nnopt_fast.train.state import TrainState

BACKEND, THREADS, PARALLEL = {backend!r}, {threads}, {parallel!r}
be = get_backend(BACKEND)
net = nf.MLP((64, 512, 512, 10), random_state=0)
cfg = make_config(net, batch_size=64, n_samples=len(X), dropout=0.1, seed=1,
                  n_threads=THREADS, parallel=PARALLEL, thread_mode="data")
state = TrainState(net, cfg)
Xf, T = X.astype(np.float32), y.astype(np.int64)
order = np.arange(len(X), dtype=np.int64)
be.run_epoch(cfg, state, Xf, T, None, order, 0.01, 0)  # compiled, buffers allocated
t0 = time.perf_counter()
be.run_epoch(cfg, state, Xf, T, None, order[:20 * 64], 0.01, 0)
per_batch = (time.perf_counter() - t0) / 20
# An epoch that would last about a minute: the same rows, over and over.
n_batches = int(60.0 / per_batch) + 1
perm = np.tile(order, -(-n_batches * 64 // len(order)))[:n_batches * 64]
start = state.params.copy()
threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
t0 = time.perf_counter()
try:
    be.run_epoch(cfg, state, Xf, T, None, perm, 0.01, 0)
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "interrupted"
elapsed = time.perf_counter() - t0
print(json.dumps({{"outcome": outcome, "elapsed": elapsed, "epoch": n_batches * per_batch,
                  "finite": bool(np.isfinite(state.params).all()),
                  "moved": bool((state.params != start).any())}}))
"""

INTERRUPT_CASES = [(be, 1, "sync") for be in COMPILED]
if available_cores() >= 2:
    INTERRUPT_CASES += [(be, 2, p) for be in COMPILED for p in ("sync", "hogwild")]


@pytest.mark.parametrize("backend, threads, parallel", INTERRUPT_CASES)
def test_ctrl_c_stops_a_long_epoch_after_a_batch(backend, threads, parallel):
    res = run(INTERRUPT.format(backend=backend, threads=threads, parallel=parallel))
    assert res["outcome"] == "interrupted"
    # The SIGINT came after 1 s of an epoch of about a minute: the epoch stopped far
    # before it could have ended, with finite weights that had trained for a while.
    assert res["epoch"] > 30.0
    assert res["elapsed"] < res["epoch"] / 4
    assert res["finite"] and res["moved"]


TRAIN_INTERRUPT = """
net = nf.MLP((64, 512, 512, 10), random_state=0)
seen = []


def interrupt_in_epoch_2(net, history):
    seen.append(net.params.copy())
    if len(seen) == 1:
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()


big = np.tile(X, (40, 1)).astype(np.float32)
labels = np.tile(y, 40)
try:
    nf.train(net, big, labels, epochs=5, batch_size=64, lr=0.01, backend={backend!r},
             n_threads=1, random_state=1, callbacks=[interrupt_in_epoch_2])
    outcome = "finished"
except KeyboardInterrupt:
    outcome = "interrupted"
print(json.dumps({{"outcome": outcome, "epochs_done": len(seen),
                  "kept_epoch_start": bool(np.array_equal(net.params, seen[-1]))}}))
"""


@pytest.mark.parametrize("backend", COMPILED)
def test_nf_train_interrupted_keeps_the_weights_of_the_epoch_start(backend):
    res = run(TRAIN_INTERRUPT.format(backend=backend))
    assert res["outcome"] == "interrupted" and res["epochs_done"] == 1
    # The weights after epoch 1, i.e. at the start of the interrupted epoch 2.
    assert res["kept_epoch_start"]


ESTIMATOR_INTERRUPT = """
from sklearn.datasets import make_classification

Xc, yc = make_classification(40000, 64, n_informative=30, n_classes=3, random_state=0)
clf = nf.MLPClassifier((512, 512), max_iter=50, batch_size=64, random_state=0,
                       backend={backend!r})
threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT)).start()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    clf.fit(Xc, yc)
messages = [str(w.message) for w in caught]
print(json.dumps({{"warned": "Training interrupted by user." in messages,
                  "n_iter": clf.n_iter_, "score": float(clf.score(Xc, yc))}}))
"""


@pytest.mark.parametrize("backend", COMPILED)
def test_an_interrupted_estimator_fit_warns_and_stays_usable(backend):
    res = run(ESTIMATOR_INTERRUPT.format(backend=backend))
    assert res["warned"]
    assert res["n_iter"] < 50
    assert 0.0 <= res["score"] <= 1.0

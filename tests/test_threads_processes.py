"""Threads and processes around training and prediction: concurrent fits and predictions,
loky and joblib workers, pinned CPUs, fork.

Each case runs in a fresh interpreter with a timeout, so that a hang fails the test
instead of hanging the suite; the script prints one JSON line that the test checks.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast.train.threads import available_cores
from tolerances import KERNEL_RTOL

needs_2_cores = pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores")

#: Generous: the slowest case (two loky workers importing scikit-learn and Numba, then
#: fitting) takes ~20 s on the 2-core machine of bench/.
TIMEOUT = 300

#: The data and model every script trains (float64, so that runs compare bit for bit).
COMMON = """
import json, threading, warnings
import numpy as np
import nnopt_fast as nf

rng = np.random.default_rng(0)
X = rng.standard_normal((1200, 64))
y = np.argmax(X @ rng.standard_normal((64, 10)), axis=1)


def child_exit(pid, timeout=60):
    # The exit code of forked child pid, or None (and the child killed) after timeout s.
    import os, signal, time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(code)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def fit(backend, n_threads, epochs=3, callbacks=None, thread_mode="data"):
    net = nf.MLP((64, 64, 10), random_state=0, dtype=np.float64)
    nf.train(net, X, y, epochs=epochs, batch_size=64, lr=0.05, dropout=0.1,
             backend=backend, n_threads=n_threads, thread_mode=thread_mode,
             random_state=1, callbacks=callbacks)
    return net.params
"""


#: Thread settings a parent may export (loky, Dask, an earlier test): each script starts
#: without them unless it sets them itself.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "BLIS_NUM_THREADS", "NUMBA_NUM_THREADS", "GOTO_NUM_THREADS")


def run_script(body, env=None, timeout=TIMEOUT):
    """Run ``COMMON + body`` in a new interpreter; returns the JSON its last line prints."""
    code = COMMON + textwrap.dedent(body)
    clean = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    try:
        proc = subprocess.run([sys.executable, "-c", code], env={**clean, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the script did not finish within {timeout} s (a hang?); its "
                    f"stderr so far: {exc.stderr!r}")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fit_here(backend, n_threads, epochs=3):
    """What ``fit`` of COMMON returns, computed in this process."""
    scope = {}
    exec(compile(COMMON, "<common>", "exec"), scope)
    return scope["fit"](backend, n_threads, epochs)


# --------------------------------------------------------------------------- concurrent fits
CONCURRENT = """
import numba
from threadpoolctl import threadpool_info

BACKEND, N_SECOND = {backend!r}, {n_second}


def blas():
    return sorted(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")


def settings():
    numba_threads = numba.get_num_threads()
    pools = sorted((p["filepath"], p["num_threads"]) for p in threadpool_info())
    return [pools, numba_threads]


alone_first = fit(BACKEND, 2, epochs=5)
alone_second = fit(BACKEND, N_SECOND, epochs=2)
before = settings()

# The second fit starts first and ends while the first one is still training: the order
# in which a last-in-first-out restore would corrupt the first fit's settings.
second_in, first_in, second_done = threading.Event(), threading.Event(), threading.Event()
out = {{"waits": [], "blas_seen_by_first": [], "numba_kept": []}}


def first_cb(net, hist):
    if hist.epochs == 1:
        first_in.set()
        out["waits"].append(second_done.wait(60))
    else:
        out["blas_seen_by_first"].append(blas())


def second_cb(net, hist):
    if hist.epochs == 1:
        second_in.set()
        out["waits"].append(first_in.wait(60))


def run(key, n_threads, epochs, cb):
    numba_before = numba.get_num_threads()
    out[key] = fit(BACKEND, n_threads, epochs, [cb])
    out["numba_kept"].append(numba.get_num_threads() == numba_before)
    if key == "second":
        second_done.set()


second = threading.Thread(target=run, args=("second", N_SECOND, 2, second_cb))
first = threading.Thread(target=run, args=("first", 2, 5, first_cb))
second.start()
out["waits"].append(second_in.wait(60))
first.start()
second.join(120)
first.join(120)
print(json.dumps({{
    "joined": not (first.is_alive() or second.is_alive()),
    "waits": out["waits"],
    "first_equal": bool(np.array_equal(out["first"], alone_first)),
    "second_equal": bool(np.array_equal(out["second"], alone_second)),
    "blas_seen_by_first": out["blas_seen_by_first"],
    "numba_kept": out["numba_kept"],
    "before": before, "after": settings(),
}}))
"""


@needs_2_cores
@pytest.mark.parametrize("backend", ["cython", "numba"])
@pytest.mark.parametrize("n_second", [1, 2])
def test_concurrent_threaded_fits_keep_their_results_and_the_settings(backend, n_second):
    res = run_script(CONCURRENT.format(backend=backend, n_second=n_second))
    assert res["joined"] and res["waits"] == [True, True, True]
    # Each equals its run alone (sync steps; their layout depends on n_threads only).
    assert res["first_equal"] and res["second_equal"]
    # After the second fit left, the first fit's epochs still ran with BLAS on one thread
    # under its own threads.
    assert res["blas_seen_by_first"] and all(set(b) == {1} for b in res["blas_seen_by_first"])
    assert res["numba_kept"] == [True, True]
    assert res["after"] == res["before"]


# --------------------------------------------------------------------------- loky, Dask
NUMBA_ONE_THREAD = """
import numba


def run(backend):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        params = fit(backend, 2)
    return params.tolist(), [str(w.message) for w in seen]


out = {backend: run(backend) for backend in ("cython", "numba")}
print(json.dumps({"numba_max": numba.config.NUMBA_NUM_THREADS, "runs": out}))
"""


@needs_2_cores
def test_numba_one_thread_environment_neither_breaks_nor_limits_a_backend():
    # loky and Dask workers export NUMBA_NUM_THREADS=1; both backends' thread teams are
    # their own (no Numba threading layer), so neither is limited by it.
    res = run_script(NUMBA_ONE_THREAD, env={"NUMBA_NUM_THREADS": "1"})
    assert res["numba_max"] == 1
    for backend, (params, warned) in res["runs"].items():
        # Two threads as asked (the same sync result as here), and not a word about Numba.
        assert warned == [], backend
        np.testing.assert_array_equal(np.array(params), fit_here(backend, 2))


NUMBA_LAUNCH = """
from threadpoolctl import threadpool_info


def openmp():
    return sorted(p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp")


import ctypes, ctypes.util
import numba.np.ufunc.parallel

# An OpenMP runtime in the process (nnopt_fast itself loads none), Numba's threads not started.
ctypes.CDLL(ctypes.util.find_library("gomp"))
before = openmp()
fit("numba", 2)  # the threaded epochs, on a team of nnopt_fast's own
print(json.dumps({"before": before, "after": openmp(),
                  "numba_layer_started": numba.np.ufunc.parallel._is_initialized}))
"""


@needs_2_cores
def test_numbas_threaded_epochs_start_no_threading_layer_and_keep_the_openmp_count():
    # Dask and loky workers export OMP_NUM_THREADS=1; Numba's OpenMP layer would set the
    # thread that starts it to NUMBA_NUM_THREADS (here: every core). The numba backend
    # never starts it.
    res = run_script(NUMBA_LAUNCH, env={"OMP_NUM_THREADS": "1"})
    assert res["before"] == [1] and res["after"] == [1]
    assert res["numba_layer_started"] is False


CROSS_VAL = """
import importlib, os, sys
import joblib
from sklearn.model_selection import cross_val_score


def worker_state():
    return [os.getenv("NUMBA_NUM_THREADS"), "numba" in sys.modules]


# Workers that have loaded Numba before (as after a fit on the numba backend); loky
# reuses them for the cross-validation below.
joblib.Parallel(n_jobs=2)(joblib.delayed(importlib.import_module)("numba") for _ in range(2))
BACKEND = {backend!r}
# Large enough steps (200 x 4e5 weights) that n_threads=2 runs the threaded epoch.
est = nf.MLPClassifier((600, 600), max_iter=2, batch_size=200, n_threads=2,
                       backend=BACKEND, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    in_workers = cross_val_score(est, X, y, cv=3, n_jobs=2)
    # In the workers, as here, both backends run their two threads (loky's
    # NUMBA_NUM_THREADS=1 limits neither).
    here = cross_val_score(est, X, y, cv=3, n_jobs=1)
workers = joblib.Parallel(n_jobs=2)(joblib.delayed(worker_state)() for _ in range(4))
print(json.dumps({{"in_workers": in_workers.tolist(), "here": here.tolist(),
                  "workers": workers}}))
"""


@needs_2_cores
@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_cross_val_score_in_loky_workers_with_two_threads(backend):
    res = run_script(CROSS_VAL.format(backend=backend))
    # What the workers had: loky's NUMBA_NUM_THREADS=1, and Numba loaded.
    assert res["workers"] == [["1", True]] * 4
    assert res["in_workers"] == res["here"]
    assert min(res["in_workers"]) > 0.3  # 10 classes: chance is 0.1


# --------------------------------------------------------------------------- pinned CPUs
PINNED = """
import os

os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
from nnopt_fast.train.threads import available_cores

with warnings.catch_warnings(record=True) as seen:
    warnings.simplefilter("always")
    clf = nf.MLPClassifier(solver="adam", max_iter=3, random_state=0).fit(X, y)
    lbfgs = nf.MLPClassifier(solver="lbfgs", max_iter=3, random_state=0).fit(X, y)
    default = fit("auto", None, thread_mode="auto")
    defaults_warned = [str(w.message) for w in seen if "threads" in str(w.message)]
    del seen[:]
    two = fit("cython", 2)
    clamp_warnings = [str(w.message) for w in seen if "threads" in str(w.message)]
from nnopt_fast.train.threads import inference_budget

with inference_budget(None) as n_default, inference_budget(2) as n_two:
    pass
print(json.dumps({
    "cores": available_cores(), "n_iter": [clf.n_iter_, lbfgs.n_iter_],
    "inference_threads": [n_default, n_two],
    "default_finite": bool(np.isfinite(default).all()),
    "default_equals_one_thread": bool(np.array_equal(default, fit("auto", 1,
                                                                 thread_mode="auto"))),
    "defaults_warned": defaults_warned, "clamp_warnings": clamp_warnings,
    "two_equals_one": bool(np.array_equal(two, fit("cython", 1))),
}))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_pinned_to_one_cpu_defaults_fit_and_more_threads_clamp():
    res = run_script(PINNED)
    assert res["cores"] == 1
    assert res["n_iter"] == [3, 3] and res["defaults_warned"] == []
    assert res["default_finite"] and res["default_equals_one_thread"]
    assert res["clamp_warnings"] == [
        "n_threads=2 asks for more threads than this process has cores (1 available): "
        "using 1"]
    assert res["two_equals_one"]
    assert res["inference_threads"] == [1, 1]  # a large prediction keeps to the one CPU


# --------------------------------------------------------------------------- prediction
RULE = """
from threadpoolctl import threadpool_limits
from nnopt_fast.estimators._forward import network
from nnopt_fast.kernels import get_backend
from nnopt_fast.kernels.inference import SPLIT_WORK
from nnopt_fast.train.state import TrainConfig
from nnopt_fast.train.threads import available_cores, inference_budget, thread_budget


def budget(n_threads=None):
    with inference_budget(n_threads) as n:
        return n


out = {"default": budget(), "one": budget(1)}
with warnings.catch_warnings():
    warnings.simplefilter("error")  # clamped without a warning: the fit warned already
    out["many"] = budget(available_cores() + 7)
with threadpool_limits(limits=1, user_api="blas"):
    out["blas_limited"] = [budget(), budget(-1), budget(2)]

# While a run of another Python thread is in progress: one thread.
entered, release = threading.Event(), threading.Event()


def other():
    cfg = TrainConfig(layer_sizes=(4, 3, 2), batch_size=4, n_threads=1)
    with thread_budget(cfg, get_backend("cython")):
        entered.set()
        release.wait(60)


t = threading.Thread(target=other)
t.start()
out["entered"] = entered.wait(60)
out["beside_a_run"] = budget()
release.set()
t.join(60)

# An estimator's predictions: the threads its compiled call is asked for.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # not converged
    est = nf.MLPClassifier(max_iter=2, random_state=0).fit(X, y)
net = network(est.coefs_, est.intercepts_, est.activation, est.out_activation_, owner=est)
compiled, seen = net._net, []


class Recording:
    def run(self, X, out, apply_output, n_threads=1):
        seen.append(n_threads)
        return compiled.run(X, out, apply_output)


net._net = Recording()
big = rng.standard_normal((SPLIT_WORK // sum(W.size for W in est.coefs_) + 1, 64))
est.predict_proba(big)
est.predict(big[:300])  # a few hundred rows: one thread
est.set_params(n_threads=1)
est.predict_proba(big)
est.set_params(n_threads=None)
with threadpool_limits(limits=1, user_api="blas"):
    est.predict_proba(big)
out["estimator"] = seen
print(json.dumps(out))
"""


@needs_2_cores
def test_prediction_threads_follow_n_threads_blas_limits_and_other_runs():
    res = run_script(RULE)
    assert res["default"] == 2 and res["one"] == 1 and res["many"] == 2
    assert res["blas_limited"] == [1, 1, 1]  # as NumPy's and scikit-learn's would
    assert res["entered"] and res["beside_a_run"] == 1
    assert res["estimator"] == [2, 1, 1, 1]


PREDICT = """
import os
import joblib
from nnopt_fast.kernels.inference import SPLIT_WORK, Network
from nnopt_fast.train.threads import inference_budget


def reference(W, b, X):
    Z = np.tanh(X @ W[0] + b[0]) @ W[1] + b[1]
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


out = {}
for name in ("float32", "float64"):
    W = [(rng.standard_normal((64, 100)) / 8).astype(name),
         (rng.standard_normal((100, 10)) / 10).astype(name)]
    b = [rng.standard_normal(100).astype(name), rng.standard_normal(10).astype(name)]
    net = Network(W, b, "tanh", "softmax", backend="cython")
    # Enough rows to split (several blocks, a shorter last one).
    Xd = rng.standard_normal((SPLIT_WORK // 7400 * 3 + 37, 64)).astype(name)
    one, Z1 = net(Xd, n_threads=1), net(Xd, apply_output=False, n_threads=1)
    raw = []
    for k in (2, 3, 7):  # also more threads than cores, straight into the compiled call
        P = np.empty_like(one)
        net._net.run(Xd, P, True, k)
        raw.append(P)
    out[name] = {
        "equal": all(np.array_equal(P, one) for P in [net(Xd, n_threads=2), *raw]),
        "equal_Z": bool(np.array_equal(net(Xd, apply_output=False, n_threads=2), Z1)),
        "err": float(np.abs(one.astype(np.float64) - reference(W, b, Xd)).max()),
    }

# Several Python threads predicting with one network at once: each its own workspaces.
Xs = [np.ascontiguousarray(Xd[rng.permutation(Xd.shape[0])]) for _ in range(4)]
expected = [net(x, n_threads=1) for x in Xs]
seen = [None] * 4


def predict(i):
    seen[i] = all(np.array_equal(net(Xs[i], n_threads=2), expected[i]) for _ in range(10))


workers = [threading.Thread(target=predict, args=(i,)) for i in range(4)]
for t in workers:
    t.start()
for t in workers:
    t.join(120)
out["concurrent"] = seen


def budget():
    with inference_budget(None) as n:
        return n


out["joblib_threads"] = joblib.Parallel(n_jobs=2, backend="threading")(
    joblib.delayed(budget)() for _ in range(4))
with inference_budget(None) as n:
    out["alone"] = n

# A forked child predicts on threads after the parent did.
pid = os.fork()
if pid == 0:
    os._exit(0 if np.array_equal(net(Xd, n_threads=2), one) else 3)
out["child_exit"] = child_exit(pid)
print(json.dumps(out))
"""


@needs_2_cores
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_split_prediction_is_the_one_thread_prediction_bit_for_bit():
    res = run_script(PREDICT)
    for name in ("float32", "float64"):
        assert res[name]["equal"] and res[name]["equal_Z"], name
        # And the reference's, to the kernels' tolerance (probabilities are at most 1).
        assert res[name]["err"] < KERNEL_RTOL[np.dtype(name)], name
    assert res["concurrent"] == [True] * 4
    assert res["joblib_threads"] == [1] * 4  # inside joblib's workers: one thread each
    assert res["alone"] == 2
    assert res["child_exit"] == 0


# --------------------------------------------------------------------------- fork
FORK_WHILE_LOCKED = """
import os
from nnopt_fast.train import threads

# Another thread holds the thread owner's lock at the moment of the fork.
held, release = threading.Event(), threading.Event()


def hold():
    with threads._SHARED_BLAS.lock:
        held.set()
        release.wait(60)


holder = threading.Thread(target=hold)
holder.start()
held.wait(60)
pid = os.fork()
if pid == 0:
    fit("numpy", 1, epochs=1)
    os._exit(0)
release.set()
holder.join()
print(json.dumps({"child_exit": child_exit(pid)}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_child_trains_although_another_thread_held_the_lock():
    # The NumPy reference backend: the compiled thread teams' own fork safety is
    # another matter; this is about the owner of the settings.
    res = run_script(FORK_WHILE_LOCKED)
    assert res["child_exit"] == 0

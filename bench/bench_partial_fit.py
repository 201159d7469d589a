"""Per-call overhead: a ``partial_fit`` loop of nf.MLPClassifier against scikit-learn's.

Run explicitly (never part of the test suite)::

    python bench/bench_partial_fit.py [--passes 20] [--repeats 5] [--profile 25]
    python bench/bench_partial_fit.py --baseline TREE    # and another tree's loop, interleaved
    python bench/bench_partial_fit.py --loop fit         # fits of 200 rows, max_iter=1
    python -m pytest bench/bench_partial_fit.py --benchmark-only -s    # pytest-benchmark

The loop streams digits (the first 1,400 rows, scaled to [0, 1]) in 64-row batches, 20
passes: 440 ``partial_fit`` calls of one Adam step each, on both estimators' defaults
(one hidden layer of 100 relu units, ``random_state=0``). Such a step costs microseconds,
so the loop measures what a call costs around it: validation, label handling, the thread
settings, buffers. ``--loop fit`` times 100 ``fit`` calls of the same estimators with
``max_iter=1`` on the first 200 rows instead (one epoch of one 200-row batch each: the
cost of a fit on tiny data). One untimed loop of each warms up (JIT compilation, first
allocations); then whole loops alternate, in an order that rotates every round, and the
medians are compared. After timing, each estimator is checked: a ``partial_fit`` loop
must have trained (accuracy on the held-out rows), a fit must have run its one epoch to
a finite loss. ``--profile N`` prints the N most expensive functions of one more
nnopt_fast loop (cProfile, cumulative time).

``--baseline TREE`` adds the loop of the nnopt_fast in another source tree (a checkout
with its extension built, e.g. ``git worktree add ../base main`` and ``python setup.py
build_ext --inplace`` there): it runs in a worker process of its own (this script with
``PYTHONPATH=TREE/src``), one loop per request, in the same rounds as the other two.
"""

import argparse
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

N_TRAIN = 1400
BATCH = 64
PASSES = 20
FIT_ROWS = 200
FIT_CALLS = 100
IMPLEMENTATIONS = ("nnopt_fast", "sklearn")
LOOPS = ("partial_fit", "fit")


def load():
    """Digits scaled to [0, 1]: (X_train, y_train, X_test, y_test)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def make_estimator(impl, loop="partial_fit"):
    """An unfitted ``MLPClassifier`` of ``impl`` with its defaults and ``random_state=0``
    (and ``max_iter=1`` for the fit loop)."""
    if impl == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from nnopt_fast import MLPClassifier
    return MLPClassifier(random_state=0, **({"max_iter": 1} if loop == "fit" else {}))


def partial_fit_loop(est, X, y, passes):
    """``passes`` passes of 64-row ``partial_fit`` calls; returns (seconds, calls)."""
    classes = np.unique(y)
    calls = 0
    t0 = time.perf_counter()
    for _ in range(passes):
        for start in range(0, len(X), BATCH):
            est.partial_fit(X[start:start + BATCH], y[start:start + BATCH], classes=classes)
            calls += 1
    return time.perf_counter() - t0, calls


def fit_loop(est, X, y, calls=FIT_CALLS):
    """``calls`` fits of ``est`` on the first 200 rows; returns (seconds, calls)."""
    X, y = X[:FIT_ROWS], y[:FIT_ROWS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=1, by design
        t0 = time.perf_counter()
        for _ in range(calls):
            est.fit(X, y)
        return time.perf_counter() - t0, calls


def timed_loop(loop, est, X, y, passes):
    """One loop of the kind ``loop`` ("partial_fit" or "fit"): (seconds, calls)."""
    if loop == "fit":
        return fit_loop(est, X, y)
    return partial_fit_loop(est, X, y, passes)


def check_trained(est, X_test, y_test, loop="partial_fit"):
    """The test accuracy, after checking that the timed calls did their work."""
    acc = est.score(X_test, y_test)
    if loop == "fit":
        assert est.n_iter_ == 1 and np.isfinite(est.loss_), f"{type(est).__module__} fit"
    else:
        # Far above chance (10%): the timed calls trained the model.
        assert acc > 0.85, f"{type(est).__module__} reached only {acc:.3f} accuracy"
    return acc


def environment():
    """CPU, cores, thread pools and versions, printed with the results."""
    import sklearn
    import threadpoolctl

    from nnopt_fast.train.threads import available_cores
    from report import cpu_model

    pools = ", ".join(f"{p['internal_api']} {p['version']} ({p['num_threads']} threads)"
                      for p in threadpoolctl.threadpool_info())
    load_avg = os.getloadavg() if hasattr(os, "getloadavg") else "n/a"
    return (f"CPU: {cpu_model()}; available cores: {available_cores()}; load average: {load_avg}\n"
            f"thread pools: {pools}\n"
            f"Python {sys.version.split()[0]}, numpy {np.__version__}, "
            f"scikit-learn {sklearn.__version__}, threadpoolctl {threadpoolctl.__version__}")


class BaselineLoop:
    """The loop of another tree's nnopt_fast, in a worker process."""

    def __init__(self, tree, loop, passes):
        env = dict(os.environ, PYTHONPATH=os.path.join(os.path.abspath(tree), "src"))
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", "--loop", loop,
             "--passes", str(passes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        ready = self.proc.stdout.readline().strip()
        if ready != "ready":
            raise RuntimeError(f"the baseline worker in {tree} did not start: {ready!r}")

    def loop(self):
        """One timed loop: (seconds, calls, test accuracy)."""
        self.proc.stdin.write("loop\n")
        self.proc.stdin.flush()
        secs, calls, acc = self.proc.stdout.readline().split()
        return float(secs), int(calls), float(acc)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def worker(loop, passes):
    """The baseline worker: warm up, say ``ready``, then time a loop per ``loop`` line."""
    X, y, X_test, y_test = load()
    timed_loop(loop, make_estimator("nnopt_fast", loop), X, y, 1)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "loop":
            est = make_estimator("nnopt_fast", loop)
            secs, calls = timed_loop(loop, est, X, y, passes)
            print(secs, calls, check_trained(est, X_test, y_test, loop), flush=True)


def run(passes=PASSES, repeats=5, baseline=None, loop="partial_fit"):
    """Interleaved loops: ({runner: [seconds, ...]}, calls per loop, accuracies).

    The runners are nnopt_fast and scikit-learn, and with ``baseline`` (a source tree)
    that tree's nnopt_fast.
    """
    X, y, X_test, y_test = load()
    for impl in IMPLEMENTATIONS:  # warm-up, untimed
        timed_loop(loop, make_estimator(impl, loop), X, y, 1)
    runners = IMPLEMENTATIONS + (("baseline",) if baseline else ())
    base = BaselineLoop(baseline, loop, passes) if baseline else None
    times = {impl: [] for impl in runners}
    accuracy = {}
    calls = 0
    try:
        for r in range(repeats):
            shift = r % len(runners)
            for impl in runners[shift:] + runners[:shift]:
                if impl == "baseline":
                    secs, calls, accuracy[impl] = base.loop()
                else:
                    est = make_estimator(impl, loop)
                    secs, calls = timed_loop(loop, est, X, y, passes)
                    accuracy[impl] = check_trained(est, X_test, y_test, loop)
                times[impl].append(secs)
    finally:
        if base is not None:
            base.close()
    return times, calls, accuracy


def report(times, calls, accuracy, loop="partial_fit"):
    med = {impl: statistics.median(t) for impl, t in times.items()}
    for impl, t in times.items():
        print(f"{impl:>10}: {med[impl]:.3f} s per loop (median of {len(t)}, min-max "
              f"{min(t):.3f}-{max(t):.3f}), {med[impl] / calls * 1e6:.0f} us per call, "
              f"test accuracy {accuracy[impl]:.3f}")
    what = (f"{calls} calls of {BATCH} rows" if loop == "partial_fit"
            else f"{calls} fits of {FIT_ROWS} rows, max_iter=1")
    print(f"nnopt_fast is {med['sklearn'] / med['nnopt_fast']:.2f}x as fast as scikit-learn "
          f"({what} per loop)")
    if "baseline" in med:
        print(f"the baseline is {med['sklearn'] / med['baseline']:.2f}x as fast as "
              f"scikit-learn; nnopt_fast is {med['baseline'] / med['nnopt_fast']:.2f}x as "
              f"fast as the baseline")


def profile(passes, top, loop="partial_fit"):
    X, y, _, _ = load()
    est = make_estimator("nnopt_fast", loop)
    timed_loop(loop, est, X, y, 1)
    prof = cProfile.Profile()
    prof.enable()
    timed_loop(loop, est, X, y, passes)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


# --------------------------------------------------------------------------- pytest-benchmark
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_partial_fit_loop(benchmark, impl):
    X, y, X_test, y_test = load()
    partial_fit_loop(make_estimator(impl), X, y, 1)
    benchmark.group = f"partial_fit loop, {PASSES} passes of {BATCH}-row batches"
    box = {}

    def setup():
        box["est"] = make_estimator(impl)
        return (), {}

    benchmark.pedantic(lambda: partial_fit_loop(box["est"], X, y, PASSES), setup=setup,
                       rounds=3, iterations=1)
    check_trained(box["est"], X_test, y_test)


# --------------------------------------------------------------------------- script
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passes", type=int, default=PASSES)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print the N most expensive functions of one nnopt_fast loop")
    ap.add_argument("--baseline", metavar="TREE",
                    help="also time the nnopt_fast of this source tree, interleaved")
    ap.add_argument("--loop", choices=LOOPS, default="partial_fit",
                    help="the partial_fit stream, or fits of 200 rows with max_iter=1")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.loop, args.passes)
        return
    times, calls, accuracy = run(args.passes, args.repeats, args.baseline, args.loop)
    print(environment())
    report(times, calls, accuracy, args.loop)
    if args.profile:
        profile(args.passes, args.profile, args.loop)


if __name__ == "__main__":
    main()

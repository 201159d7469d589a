"""Per-call overhead: a ``partial_fit`` loop of nf.MLPClassifier against scikit-learn's.

Run explicitly (never part of the test suite)::

    python bench/bench_partial_fit.py [--passes 20] [--repeats 5] [--profile 25]
    python -m pytest bench/bench_partial_fit.py --benchmark-only -s    # pytest-benchmark

The loop streams digits (the first 1,400 rows, scaled to [0, 1]) in 64-row batches, 20
passes: 440 ``partial_fit`` calls of one Adam step each, on both estimators' defaults
(one hidden layer of 100 relu units, ``random_state=0``). Such a step costs microseconds,
so the loop measures what a call costs around it: validation, label handling, the thread
settings, buffers. One untimed pass of each warms up (JIT compilation, first
allocations); then whole loops alternate between the two, in an order that flips every
round, and the medians are compared. After timing, each estimator's accuracy on the
held-out rows checks that the loops trained. ``--profile N`` prints the N most expensive
functions of one more nnopt_fast loop (cProfile, cumulative time).
"""

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

N_TRAIN = 1400
BATCH = 64
PASSES = 20
IMPLEMENTATIONS = ("nnopt_fast", "sklearn")


def load():
    """Digits scaled to [0, 1]: (X_train, y_train, X_test, y_test)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:], y[N_TRAIN:]


def make_estimator(impl):
    """An unfitted ``MLPClassifier`` of ``impl`` with its defaults and ``random_state=0``."""
    if impl == "sklearn":
        from sklearn.neural_network import MLPClassifier
    else:
        from nnopt_fast import MLPClassifier
    return MLPClassifier(random_state=0)


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


def check_trained(est, X_test, y_test):
    # Far above chance (10%): the timed calls trained the model.
    acc = est.score(X_test, y_test)
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


def run(passes=PASSES, repeats=5):
    """Interleaved loops of both: ({impl: [seconds, ...]}, calls per loop, accuracies)."""
    X, y, X_test, y_test = load()
    for impl in IMPLEMENTATIONS:  # warm-up, untimed
        partial_fit_loop(make_estimator(impl), X, y, 1)
    times = {impl: [] for impl in IMPLEMENTATIONS}
    accuracy = {}
    calls = 0
    for r in range(repeats):
        order = IMPLEMENTATIONS if r % 2 == 0 else IMPLEMENTATIONS[::-1]
        for impl in order:
            est = make_estimator(impl)
            secs, calls = partial_fit_loop(est, X, y, passes)
            times[impl].append(secs)
            accuracy[impl] = check_trained(est, X_test, y_test)
    return times, calls, accuracy


def report(times, calls, accuracy):
    med = {impl: statistics.median(t) for impl, t in times.items()}
    for impl in IMPLEMENTATIONS:
        t = times[impl]
        print(f"{impl:>10}: {med[impl]:.3f} s per loop (median of {len(t)}, min-max "
              f"{min(t):.3f}-{max(t):.3f}), {med[impl] / calls * 1e6:.0f} us per call, "
              f"test accuracy {accuracy[impl]:.3f}")
    print(f"nnopt_fast is {med['sklearn'] / med['nnopt_fast']:.2f}x as fast as scikit-learn "
          f"({calls} calls of {BATCH} rows per loop)")


def profile(passes, top):
    X, y, _, _ = load()
    est = make_estimator("nnopt_fast")
    partial_fit_loop(est, X, y, 1)
    prof = cProfile.Profile()
    prof.enable()
    partial_fit_loop(est, X, y, passes)
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
    args = ap.parse_args(argv)
    times, calls, accuracy = run(args.passes, args.repeats)
    print(environment())
    report(times, calls, accuracy)
    if args.profile:
        profile(args.passes, args.profile)


if __name__ == "__main__":
    main()

"""nf.MLPClassifier.fit against scikit-learn's MLPClassifier.fit on BENCH.md's W1 and W2.

Run explicitly (never part of the test suite)::

    python -m pytest bench/bench_estimators.py --benchmark-only -s    # pytest-benchmark
    python bench/bench_estimators.py [--workloads W1,W2] [--epochs 3] [--repeats 3]

Both estimators get the same hyper-parameters (BENCH.md: tanh hidden layers, plain SGD
without momentum at lr 0.05, scikit-learn's ``alpha`` giving a per-step L2 coefficient of
1e-4, shuffled mini-batches, float32 data) and a fixed number of epochs (``tol=0`` with
``n_iter_no_change`` above the epoch count, so neither stops early). scikit-learn has no
dropout, so the headline ratio is without dropout; nnopt_fast with BENCH.md's dropout 0.2 is
timed beside it. The two are interleaved and each median is over ``repeats`` fits, after a
warm-up fit of nnopt_fast (JIT compilation, first allocations) outside the timed region.
"""

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import WORKLOADS, make_data, parse_names  # noqa: E402

EPOCHS = {"W1": 5, "W2": 2}
IMPLEMENTATIONS = ("nnopt_fast", "nnopt_fast+dropout", "sklearn")


def make_estimator(impl, workload, epochs, random_state=1):
    """An unfitted classifier of ``impl`` with BENCH.md's hyper-parameters for ``workload``."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    import nnopt_fast as nf

    params = dict(hidden_layer_sizes=workload.hidden, activation="tanh", solver="sgd",
                  momentum=0.0, learning_rate_init=0.05, alpha=workload.sklearn_alpha,
                  batch_size=workload.batch_size, max_iter=epochs, shuffle=True, tol=0.0,
                  n_iter_no_change=epochs + 1, random_state=random_state)
    if impl == "sklearn":
        return SkMLP(**params)
    return nf.MLPClassifier(dropout=0.2 if impl.endswith("dropout") else 0.0, **params)


def timed_fit(est, X, y):
    """Seconds taken by ``est.fit(X, y)`` (convergence warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        est.fit(X, y)
        return time.perf_counter() - t0


def _check(est, X, y):
    # The timed fit must have trained: far above the 10% chance accuracy.
    acc = est.score(X[:5000], y[:5000])
    assert acc > 0.3, f"{type(est).__module__} reached only {acc:.3f} accuracy"
    return acc


def environment():
    """CPU, thread pools and versions, printed with the results."""
    import sklearn
    import threadpoolctl

    import nnopt_fast as nf

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    pools = [f"{p['internal_api']}({p['num_threads']})"
             for p in threadpoolctl.threadpool_info()]
    backend = nf.MLPClassifier()
    from nnopt_fast.estimators import _n_threads_default
    from nnopt_fast.kernels import get_backend

    return (f"CPU: {cpu}; cores: {os.cpu_count()}; thread pools: {', '.join(pools)}; "
            f"nnopt_fast backend: {get_backend(backend.backend).BACKEND_NAME}, "
            f"n_threads={_n_threads_default()}; numpy {np.__version__}, "
            f"scikit-learn {sklearn.__version__}")


# --------------------------------------------------------------------------- pytest-benchmark
_medians = {}


@pytest.fixture(scope="module", autouse=True)
def _ratio_report():
    yield
    print("\n" + environment())
    for name in EPOCHS:
        m = _medians.get(name, {})
        if "sklearn" in m and "nnopt_fast" in m:
            print(f"{name}: sklearn {m['sklearn']:.3f} s, nnopt_fast {m['nnopt_fast']:.3f} s "
                  f"-> {m['sklearn'] / m['nnopt_fast']:.1f}x faster"
                  + (f"; with dropout 0.2 {m['nnopt_fast+dropout']:.3f} s"
                     if "nnopt_fast+dropout" in m else ""))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("name", list(EPOCHS))
def test_fit(benchmark, name, impl):
    workload = WORKLOADS[name]
    X, y = make_data(workload)
    epochs = EPOCHS[name]
    benchmark.group = f"{name} fit, {epochs} epochs"
    benchmark.extra_info.update(workload=name, epochs=epochs, impl=impl)
    rounds = 3 if impl != "sklearn" or name == "W1" else 2
    box = {}

    def setup():
        box["est"] = make_estimator(impl, workload, epochs)
        return (), {}

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            box["est"].fit(X, y)

    if impl != "sklearn":
        timed_fit(make_estimator(impl, workload, 1), X[:2000], y[:2000])  # JIT warm-up
    benchmark.pedantic(run, setup=setup, rounds=rounds, iterations=1)
    _check(box["est"], X, y)
    _medians.setdefault(name, {})[impl] = benchmark.stats.stats.median


# --------------------------------------------------------------------------- script
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="W1,W2")
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs per fit (default: 5 for W1, 2 for W2)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    print(environment())
    for name in parse_names(args.workloads):
        workload = WORKLOADS[name]
        epochs = args.epochs or EPOCHS.get(name, 2)
        X, y = make_data(workload)
        for impl in IMPLEMENTATIONS[:2]:
            timed_fit(make_estimator(impl, workload, 1), X[:2000], y[:2000])
        times = {impl: [] for impl in IMPLEMENTATIONS}
        for _ in range(args.repeats):
            for impl in IMPLEMENTATIONS:  # interleaved: the machine's load hits all alike
                est = make_estimator(impl, workload, epochs)
                times[impl].append(timed_fit(est, X, y))
                _check(est, X, y)
        med = {impl: statistics.median(t) for impl, t in times.items()}
        print(f"{name} ({workload.n_samples} x {'-'.join(map(str, workload.layers))}, batch "
              f"{workload.batch_size}, {epochs} epochs, median of {args.repeats}): "
              f"sklearn {med['sklearn']:.3f} s ({med['sklearn'] / epochs:.3f} s/epoch), "
              f"nnopt_fast {med['nnopt_fast']:.3f} s ({med['nnopt_fast'] / epochs:.4f} "
              f"s/epoch) -> {med['sklearn'] / med['nnopt_fast']:.1f}x; "
              f"nnopt_fast with dropout 0.2 {med['nnopt_fast+dropout']:.3f} s "
              f"(sklearn has no dropout)")


if __name__ == "__main__":
    main()

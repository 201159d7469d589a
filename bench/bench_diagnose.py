"""Speed of nf.bias_variance and nf.validation_curve against mlxtend and scikit-learn.

Three comparisons on W1's network (64-32-10, tanh, plain SGD lr 0.05, batch 32, BENCH.md's
L2; no dropout, which scikit-learn lacks), the same data, rounds and epochs on both sides:

- ``nf.bias_variance`` (nnopt_fast's MLPClassifier: its rounds trained as one group, on
  every core) vs mlxtend's ``bias_variance_decomp`` (scikit-learn's MLPClassifier,
  serial): 50 rounds of 10 epochs on 5,000 rows, 2,000 test rows;
- the same ``nf.bias_variance`` vs its one-fit-per-task path (``group=False``, with
  ``n_jobs=1`` and ``n_jobs=-1``: loky's process workers, warmed up beforehand);
- ``nf.validation_curve`` over 5 alphas x 5 folds (nnopt_fast's MLP) vs scikit-learn's
  ``validation_curve`` (scikit-learn's MLP), both with ``n_jobs=-1``.

Usage::

    python bench/bench_diagnose.py [--n-train 5000] [--epochs 10] [--rounds 50] [--repeats 3]
    pytest bench/bench_diagnose.py --benchmark-only     # pytest-benchmark records

The script interleaves the sides (their order rotating every repeat) and prints medians
and their ratios. Data: W1's synthetic task (bench/workloads.py), first ``n_train`` rows
for training, next 2,000 for testing (not W1's 50,000 rows: the serial peer would need
~10 minutes a run).
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

from workloads import WORKLOADS, make_data  # noqa: E402

W1 = WORKLOADS["W1"]
N_TEST = 2000
ALPHAS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def _params(epochs):
    # Identical hyper-parameters on both sides; tol/n_iter_no_change keep every epoch.
    return dict(hidden_layer_sizes=W1.hidden, activation="tanh", solver="sgd", momentum=0.0,
                learning_rate_init=0.05, batch_size=W1.batch_size, alpha=W1.sklearn_alpha,
                max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1, random_state=1)


def nf_estimator(epochs):
    import nnopt_fast as nf

    return nf.MLPClassifier(**_params(epochs))


def sk_estimator(epochs):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(**_params(epochs))


def data(n_train, dtype=np.float32):
    X, y = make_data(W1, dtype=dtype)
    return X[:n_train], y[:n_train], X[n_train:n_train + N_TEST], y[n_train:n_train + N_TEST]


def run_nf_bias_variance(d, epochs, rounds, n_jobs=None, group=True):
    import nnopt_fast as nf

    # seed_estimator=False: every round starts from random_state=1, as mlxtend's rounds do.
    r = nf.bias_variance(nf_estimator(epochs), *d, n_rounds=rounds, loss="0-1",
                         random_state=0, n_jobs=n_jobs, seed_estimator=False, group=group)
    return r.expected_loss, r.bias, r.variance


def run_mlxtend(d, epochs, rounds):
    from mlxtend.evaluate import bias_variance_decomp

    return bias_variance_decomp(sk_estimator(epochs), *d, loss="0-1_loss", num_rounds=rounds,
                                random_seed=0)


def run_nf_validation_curve(d, epochs, cv=5):
    import nnopt_fast as nf

    vc = nf.validation_curve(nf_estimator(epochs), d[0], d[1], "alpha", ALPHAS, cv=cv,
                             n_jobs=-1)
    return vc.mean("validation_scores")


def run_sklearn_validation_curve(d, epochs, cv=5):
    from sklearn.model_selection import validation_curve

    _, val = validation_curve(sk_estimator(epochs), d[0], d[1], param_name="alpha",
                              param_range=ALPHAS, cv=cv, n_jobs=-1)
    return val.mean(axis=1)


def _warm_up(d):
    # JIT, kernel buffers and the joblib worker pool, outside the timed region.
    small = tuple(a[:200] for a in d)
    run_nf_bias_variance(small, 1, 2)
    run_nf_bias_variance(small, 1, 4, n_jobs=-1, group=False)
    run_nf_validation_curve(small, 1, cv=2)
    run_sklearn_validation_curve(small, 1, cv=2)


# ---------------------------------------------------------------------------
# pytest-benchmark entry points
# ---------------------------------------------------------------------------
BENCH_N, BENCH_EPOCHS, BENCH_ROUNDS = 5000, 10, 50


@pytest.fixture(scope="module")
def bench_data():
    d = data(BENCH_N)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _warm_up(d)
    return d


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("side", ["nnopt_fast", "mlxtend+sklearn"])
def test_bias_variance_speed(benchmark, bench_data, side):
    benchmark.group = f"bias_variance {BENCH_ROUNDS} rounds, W1 net, n={BENCH_N}"
    fn = run_nf_bias_variance if side == "nnopt_fast" else run_mlxtend
    loss, bias, var = benchmark.pedantic(fn, args=(bench_data, BENCH_EPOCHS, BENCH_ROUNDS),
                                         rounds=1, iterations=1)
    # The task is learnable: both sides must have learned it (checked after timing).
    assert loss < 0.5 and 0 <= var <= loss + bias


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("side", ["nnopt_fast", "sklearn"])
def test_validation_curve_speed(benchmark, bench_data, side):
    benchmark.group = f"validation_curve over alpha, W1 net, n={BENCH_N}"
    fn = run_nf_validation_curve if side == "nnopt_fast" else run_sklearn_validation_curve
    scores = benchmark.pedantic(fn, args=(bench_data, BENCH_EPOCHS), rounds=1, iterations=1)
    assert np.all(scores > 0.5)


# ---------------------------------------------------------------------------
# script: interleaved medians and ratios
# ---------------------------------------------------------------------------
def _time(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    import joblib
    import sklearn
    import threadpoolctl

    import nnopt_fast as nf

    d = data(args.n_train)
    _warm_up(d)
    bv = (d, args.epochs, args.rounds)
    sides = [
        ("nf_bv", run_nf_bias_variance, bv),
        ("nf_each1", run_nf_bias_variance, (*bv, 1, False)),
        ("nf_each", run_nf_bias_variance, (*bv, -1, False)),
        ("mlx_bv", run_mlxtend, bv),
        ("nf_vc", run_nf_validation_curve, (d, args.epochs)),
        ("sk_vc", run_sklearn_validation_curve, (d, args.epochs)),
    ]
    times = {k: [] for k, _, _ in sides}
    outs = {}
    load = [os.getloadavg()]
    for r in range(args.repeats):
        for key, fn, fargs in sides[r % len(sides):] + sides[:r % len(sides)]:
            t, outs[key] = _time(fn, *fargs)
            times[key].append(t)
    load.append(os.getloadavg())
    med = {k: statistics.median(v) for k, v in times.items()}
    blas = [(i["internal_api"], i["num_threads"]) for i in threadpoolctl.threadpool_info()]
    print(f"cpu cores: {os.cpu_count()}, BLAS: {blas}, load average at start {load[0]}, "
          f"at end {load[1]}")
    print(f"nnopt_fast {nf.__version__}, scikit-learn {sklearn.__version__}, "
          f"joblib {joblib.__version__}")
    print(f"W1 net {W1.layers}, n_train={args.n_train}, n_test={N_TEST}, epochs={args.epochs}, "
          f"rounds={args.rounds}, repeats={args.repeats} (medians, s)")
    for key, _, _ in sides:
        print(f"   {key:9} {med[key]:7.3f}   runs: {', '.join(f'{t:.3f}' for t in times[key])}")
    each = min(med["nf_each1"], med["nf_each"])
    print(f"1. bias_variance vs mlxtend:         {med['mlx_bv'] / med['nf_bv']:.1f}x "
          f"(mlxtend {med['mlx_bv']:.2f} s, nnopt_fast {med['nf_bv']:.3f} s)")
    print(f"2. group vs one fit per task:        {each / med['nf_bv']:.1f}x (one fit per task: "
          f"n_jobs=1 {med['nf_each1']:.2f} s, n_jobs=-1 {med['nf_each']:.2f} s)")
    print(f"4. validation_curve vs scikit-learn: {med['sk_vc'] / med['nf_vc']:.1f}x "
          f"(scikit-learn {med['sk_vc']:.2f} s, nnopt_fast {med['nf_vc']:.3f} s)")
    print(f"   (loss, bias, variance)  nf {np.round(outs['nf_bv'], 4).tolist()}  "
          f"one fit per task {np.round(outs['nf_each1'], 4).tolist()}  "
          f"mlxtend {np.round(outs['mlx_bv'], 4).tolist()}")
    print(f"   mean validation accuracy per alpha  nf {np.round(outs['nf_vc'], 3).tolist()}  "
          f"sklearn {np.round(outs['sk_vc'], 3).tolist()}")
    assert outs["nf_bv"] == outs["nf_each1"] == outs["nf_each"], "the paths disagree"
    return med


if __name__ == "__main__":
    main()

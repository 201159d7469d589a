"""Prediction speed: nnopt_fast's compiled forward pass against scikit-learn's MLP.

Run explicitly (never part of the test suite)::

    python bench/bench_predict.py [--repeats 7]

Two jobs, each side's calls interleaved, medians of ``--repeats`` timings:

- ``predict_proba`` of the default ``MLPClassifier`` (100 hidden units, ``max_iter=50``)
  fitted on scikit-learn's digits, on all 1,797 rows, for both libraries;
- the latency of one-row predictions on a 64-32-10 network: ``nf.MLP.predict`` of one
  row, the estimator's ``predict`` of one row, and scikit-learn's ``predict`` of one row
  (a loop of 2,000 calls each, divided).
"""

import argparse
import statistics
import time
import warnings

import numpy as np


def _interleaved(fns, calls, repeats):
    """``{name: median seconds per call}`` of ``fns``, each timed over ``calls`` calls,
    the sides alternating, ``repeats`` rounds."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            times[k].append((time.perf_counter() - t0) / calls)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier as SkMLP

    import nnopt_fast as nf

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    ours = nf.MLPClassifier(max_iter=50, random_state=0).fit(X, y)
    theirs = SkMLP(max_iter=50, random_state=0).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-8)
    med = _interleaved({"nnopt_fast": lambda: ours.predict_proba(X),
                        "scikit-learn": lambda: theirs.predict_proba(X)}, 20, args.repeats)

    # digits has 64 features: a 64-32-10 network.
    net = nf.MLP([64, 32, 10], activation="tanh", dtype=np.float64, random_state=0)
    est = nf.MLPClassifier((32,), max_iter=20, random_state=0).fit(X, y)
    sk = SkMLP((32,), max_iter=20, random_state=0).fit(X, y)
    row = X[:1]
    lat = _interleaved({"nf.MLP.predict": lambda: net.predict(row),
                        "MLPClassifier.predict": lambda: est.predict(row),
                        "scikit-learn predict": lambda: sk.predict(row)}, 2000, args.repeats)

    print(f"nnopt_fast {nf.__version__}, scikit-learn {sklearn.__version__}; medians of "
          f"{args.repeats} interleaved repeats")
    print(f"predict_proba, digits (1,797 x 64), 100 hidden units: nnopt_fast "
          f"{med['nnopt_fast'] * 1e3:.3f} ms, scikit-learn {med['scikit-learn'] * 1e3:.3f} ms, "
          f"{med['scikit-learn'] / med['nnopt_fast']:.1f}x faster")
    for k, v in lat.items():
        print(f"one-row latency, 64-32-10, {k}: {v * 1e6:.1f} us")
    print(f"estimator predict vs scikit-learn's: "
          f"{lat['scikit-learn predict'] / lat['MLPClassifier.predict']:.1f}x faster")


if __name__ == "__main__":
    main()

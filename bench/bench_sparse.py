"""Sparse X: fit time and peak memory of nnopt_fast's and scikit-learn's MLPClassifier.

The job of issue 14: a 5,000 x 50,000 CSR matrix with 250,000 non-zeros (float64,
values N(0, 1), 50 per row at random columns), 10 classes (the argmax of a fixed random
linear map of X), ``MLPClassifier(hidden_layer_sizes=(100,), max_iter=10)`` with the
other parameters at their defaults (adam, batch 200), ``tol=0`` so both run every epoch.

Each fit runs in a fresh process, alternating the two libraries: the process imports its
library, builds the matrix, fits once and reports the fit's wall time and its peak
resident memory (``ru_maxrss``), and the resident memory just before the fit (imports
and data), so that "fit" is the growth the fit itself caused.

Usage::

    python bench/bench_sparse.py [--repeats 3] [--solver adam|sgd|lbfgs]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, warnings
import numpy as np
import scipy.sparse as sp
lib, solver = sys.argv[1], sys.argv[2]
if lib == "nnopt_fast":
    from nnopt_fast import MLPClassifier
else:
    from sklearn.neural_network import MLPClassifier
rng = np.random.default_rng(0)
n, d, per_row = 5000, 50000, 50
cols = rng.integers(0, d, size=n * per_row)
X = sp.csr_matrix((rng.normal(size=n * per_row), cols, np.arange(0, n * per_row + 1, per_row)),
                  shape=(n, d))
X.sum_duplicates()
y = np.asarray(X @ rng.normal(size=(d, 10))).argmax(axis=1)
def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
before = rss_mb()
clf = MLPClassifier(hidden_layer_sizes=(100,), max_iter=10, tol=0.0, solver=solver,
                    random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    clf.fit(X, y)
    secs = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": secs, "peak_mb": peak, "before_mb": before, "nnz": X.nnz,
                  "train_accuracy": float(clf.score(X, y))}))
"""


def run(lib, solver):
    out = subprocess.run([sys.executable, "-c", CHILD, lib, solver], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--solver", default="adam", choices=["adam", "sgd", "lbfgs"])
    args = ap.parse_args()
    runs = {"nnopt_fast": [], "sklearn": []}
    for _ in range(args.repeats):
        for lib in runs:
            runs[lib].append(run(lib, args.solver))
    print(f"load average {os.getloadavg()[0]:.2f}; 5,000 x 50,000 CSR, "
          f"{runs['sklearn'][0]['nnz']:,} non-zeros; solver {args.solver}, 10 epochs")
    print("| library | fit s (median) | peak RSS MB | RSS before fit MB | fit's growth MB "
          "| train accuracy |")
    print("|---|---|---|---|---|---|")
    med = {}
    for lib, rs in runs.items():
        med[lib] = {k: statistics.median(r[k] for r in rs)
                    for k in ("seconds", "peak_mb", "before_mb", "train_accuracy")}
        m = med[lib]
        print(f"| {lib} | {m['seconds']:.3f} | {m['peak_mb']:.0f} | {m['before_mb']:.0f} | "
              f"{m['peak_mb'] - m['before_mb']:.0f} | {m['train_accuracy']:.3f} |")
    nf, sk = med["nnopt_fast"], med["sklearn"]
    print(f"time: nnopt_fast / scikit-learn = {nf['seconds'] / sk['seconds']:.3f}; "
          f"peak RSS ratio {nf['peak_mb'] / sk['peak_mb']:.2f}; fit growth ratio "
          f"{(nf['peak_mb'] - nf['before_mb']) / max(1.0, sk['peak_mb'] - sk['before_mb']):.2f}")


if __name__ == "__main__":
    main()

"""Many models at once: ``nf.train_many`` against one ``nf.train`` call per model.

Run explicitly (never part of the test suite)::

    python bench/bench_group.py [--workload W6] [--models 32] [--epochs 2] [--repeats 5]
    python bench/bench_group.py --workload W1 --rows 5000 --models 50 --epochs 10
    python -m pytest bench/bench_group.py --benchmark-only -s    # pytest-benchmark

The job: ``--models`` networks of a BENCH.md workload (default W6, 24-8-2 tanh, dropout
0.2, batch 200, plain SGD lr 0.05 with the per-step L2 coefficient 1e-4, on its 200,000
rows, float32), each with its own seed (its initial weights, sample order and dropout
masks), ``--epochs`` epochs each. One side calls ``nf.train`` once per model with its
defaults (every core offered; the thread rule keeps such small steps on one thread); the
other trains them all with one ``nf.train_many`` call (every core: the threads split the
models). One untimed run of each warms up; then the two alternate, ``--repeats`` times,
in an order that rotates, and the medians are compared. After timing, every model of the
group is checked against its twin trained alone: the same weights, bit for bit.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import WORKLOADS, make_data  # noqa: E402


def job(workload, rows, epochs):
    """(X, y, nets(k), train keywords) of a workload's job."""
    import nnopt_fast as nf

    w = WORKLOADS[workload]
    X, y = make_data(w)
    if rows:
        X, y = X[:rows], y[:rows]
    kw = dict(epochs=epochs, batch_size=w.batch_size, lr=w.lr, optimizer=w.optimizer,
              l2=w.l2_per_step * len(X), dropout=w.dropout)

    def nets(n_models):
        return [nf.MLP(w.layers, random_state=k) for k in range(n_models)]

    return X, y, nets, kw


def run_alone(X, y, nets, kw, n_models):
    import nnopt_fast as nf

    models = nets(n_models)
    for k, net in enumerate(models):
        nf.train(net, X, y, random_state=k, **kw)
    return models


def run_group(X, y, nets, kw, n_models):
    import nnopt_fast as nf

    models = nets(n_models)
    nf.train_many(models, X, y, random_state=list(range(n_models)), **kw)
    return models


def _time(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def environment():
    """The lines that say where a run ran: CPU, cores, load, BLAS, versions."""
    import nnopt_fast as nf
    from nnopt_fast.train.threads import available_cores
    from report import cpu_model, thread_pools

    blas = [(p["internal_api"], p["version"], p["num_threads"]) for p in thread_pools()
            if p["user_api"] == "blas"]
    return [f"CPU: {cpu_model()}; cores available: {available_cores()}; load average "
            f"{os.getloadavg()}", f"nnopt_fast {nf.__version__}, numpy {np.__version__}; "
            f"BLAS {blas}"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", default="W6")
    p.add_argument("--rows", type=int, default=None, help="first rows only (default: all)")
    p.add_argument("--models", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    X, y, nets, kw = job(args.workload, args.rows, args.epochs)
    sides = {"alone": run_alone, "group": run_group}
    for fn in sides.values():  # warm-up: first allocations, compiled paths
        fn(X, y, nets, kw, 2)
    times = {name: [] for name in sides}
    models = {}
    order = list(sides)
    for r in range(args.repeats):
        for name in order[r % 2:] + order[:r % 2]:
            t, models[name] = _time(sides[name], X, y, nets, kw, args.models)
            times[name].append(t)
    same = all(np.array_equal(a.params, b.params)
               for a, b in zip(models["group"], models["alone"]))
    med = {k: statistics.median(v) for k, v in times.items()}
    for line in environment():
        print(line)
    w = WORKLOADS[args.workload]
    print(f"{args.models} models of {args.workload} {w.layers}, batch {w.batch_size}, "
          f"{len(X)} rows, {args.epochs} epochs, float32; medians of {args.repeats} "
          f"interleaved runs (s)")
    print(f"  {args.models} nf.train calls: {med['alone']:.3f}  (runs: "
          f"{', '.join(f'{t:.3f}' for t in times['alone'])})")
    print(f"  nf.train_many:      {med['group']:.3f}  (runs: "
          f"{', '.join(f'{t:.3f}' for t in times['group'])})")
    print(f"  ratio: {med['alone'] / med['group']:.2f}x; every model bit-identical to its "
          f"nf.train twin: {same}")
    return med


@pytest.mark.parametrize("side", ["alone", "group"])
def test_many_models_speed(benchmark, side):
    X, y, nets, kw = job("W6", None, 2)
    fn = run_alone if side == "alone" else run_group
    fn(X, y, nets, kw, 2)
    benchmark.group = "32 models of W6, 2 epochs"
    models = benchmark.pedantic(fn, args=(X, y, nets, kw, 32), rounds=1, iterations=1)
    assert all(np.isfinite(m.params).all() for m in models)


if __name__ == "__main__":
    main()

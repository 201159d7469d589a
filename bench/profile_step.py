"""Microseconds per training step of one workload's serial compiled epoch, for profiling.

Run explicitly (never part of the test suite)::

    python bench/profile_step.py W6 --epochs 400
    python bench/profile_step.py W6 --dtype float64 --output identity   # SimpleChains' setting
    perf record -e cpu-clock -F 5000 python bench/profile_step.py W6 --epochs 400

Builds the workload's network, config and training state once, then calls the backend's
``run_epoch`` ``--epochs`` times on one thread (no Python around the epochs but the call),
so that a profiler's samples fall in the batch step. Prints the minimum and median
microseconds per step.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import WORKLOADS, make_data  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workload", choices=sorted(WORKLOADS))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--output", choices=("softmax", "identity"), default="softmax",
                   help="identity: squared error against one-hot targets")
    p.add_argument("--backend", default="cython")
    p.add_argument("--no-shuffle", action="store_true", help="rows in order")
    args = p.parse_args(argv)

    import nnopt_fast as nf
    from nnopt_fast.kernels import get_backend
    from nnopt_fast.train.loop import make_config
    from nnopt_fast.train.state import TrainState
    from nnopt_fast.train.threads import thread_budget

    w = WORKLOADS[args.workload]
    dt = np.dtype(args.dtype)
    X, y = make_data(w, dtype=dt)
    T = np.eye(w.layers[-1], dtype=dt)[y] if args.output == "identity" else y
    net = nf.MLP(w.layers, "tanh", args.output, dt, random_state=1)
    cfg = make_config(net, batch_size=w.batch_size, n_samples=w.n_samples, l2=w.l2,
                      optimizer=w.optimizer, dropout=w.dropout, seed=1, n_threads=1)
    backend = get_backend(args.backend)
    state = TrainState(net, cfg)
    perm = np.arange(len(X), dtype=np.int64)
    if not args.no_shuffle:
        perm = np.random.default_rng(0).permutation(len(X)).astype(np.int64)
    steps = -(-len(X) // w.batch_size)
    times = []
    with thread_budget(cfg, backend, len(X)) as c:
        for _ in range(args.epochs):
            t0 = time.perf_counter()
            backend.run_epoch(c, state, X, T, None, perm, w.lr, state.step)
            times.append(time.perf_counter() - t0)
    times.sort()
    print(f"{args.workload} {dt} {args.output} {args.backend}: min "
          f"{times[0] / steps * 1e6:.2f} us/step, median "
          f"{times[len(times) // 2] / steps * 1e6:.2f} us/step ({steps} steps per epoch, "
          f"{args.epochs} epochs)")


if __name__ == "__main__":
    main()

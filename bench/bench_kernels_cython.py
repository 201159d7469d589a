"""Seconds per epoch of the Cython backend's ``run_epoch`` on BENCH.md's workloads.

Run with pytest-benchmark (``pytest bench/bench_kernels_cython.py``) or as a script
(``python bench/bench_kernels_cython.py W1 W4 --backends cython,numpy``) for a plain table
that also reports main-thread CPU seconds, which a busy shared machine inflates less.
BLAS gets ``--blas-threads`` threads (1 by default, as ``nf.train`` runs with
``n_threads=1``); on a loaded machine OpenBLAS's spinning workers make 2 threads far slower.
"""

import argparse
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nnopt_fast.kernels import get_backend
from nnopt_fast.model.mlp import MLP
from nnopt_fast.train.loop import make_config
from nnopt_fast.train.state import TrainState

#: name: (n samples, layer sizes, batch size), from BENCH.md.
WORKLOADS = {
    "W1": (50_000, (64, 32, 10), 32),
    "W2": (60_000, (784, 256, 128, 10), 64),
    "W3": (60_000, (784, 1024, 1024, 10), 256),
    "W4": (20_000, (64, 32, 10), 1),
    "W5": (20_000, (784, 256, 128, 10), 20_000),
}


def setup_workload(name, backend, seed=0):
    """Data, config and state of one workload: float32, softmax, tanh, SGD, L2, dropout 0.2.

    Returns a function running one epoch (a fresh shuffle each call) and returning
    ``(data_loss, penalty_loss, n_steps, status)``.
    """
    n, sizes, batch = WORKLOADS[name]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0])).astype(np.float32)
    y = np.argmax(X @ rng.standard_normal((sizes[0], sizes[-1])), axis=1).astype(np.int64)
    net = MLP(sizes, dtype=np.float32, random_state=seed)
    # BENCH.md: the per-step L2 coefficient l2 / m is 1e-4.
    cfg = make_config(net, batch_size=batch, n_samples=n, l2=1e-4 * n, dropout=0.2, seed=seed)
    state = TrainState(net, cfg)
    be = get_backend(backend)

    def epoch():
        perm = rng.permutation(n).astype(np.int64)
        res = be.run_epoch(cfg, state, X, y, None, perm, 0.05, state.step)
        state.step += res[2]
        state.t += res[2]
        return res

    return epoch


@pytest.mark.parametrize("workload", ["W1", "W4", "W2"])
def test_cython_epoch(benchmark, workload):
    epoch = setup_workload(workload, "cython")
    epoch()  # warm-up: allocates the workspace
    res = benchmark.pedantic(epoch, rounds=5, iterations=1)
    assert res[3] == 0 and np.isfinite(res[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", default=["W1", "W4"])
    parser.add_argument("--backends", default="cython,numpy")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        get_backend(backend)  # load every BLAS first: threadpoolctl limits loaded ones only
    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        _table(args)


def _table(args):
    print(f"{'workload':8} {'backend':8} {'s/epoch':>9} {'cpu s':>8} {'samples/s':>11}")
    for name in args.workloads:
        for backend in args.backends.split(","):
            epoch = setup_workload(name, backend)
            epoch()
            wall, cpu = [], []
            for _ in range(args.epochs):
                t, c = time.perf_counter(), time.thread_time()
                res = epoch()
                wall.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
            if res[3] != 0:
                raise RuntimeError(f"{name} diverged on {backend}")
            med = float(np.median(wall))
            print(f"{name:8} {backend:8} {med:9.4f} {np.median(cpu):8.4f} "
                  f"{WORKLOADS[name][0] / med:11.0f}")


if __name__ == "__main__":
    main()

"""Thread scaling, 1 -> N threads, of the sync and Hogwild epochs on the BENCH.md workloads.

Run from the repository root::

    python bench/bench_threads.py --workloads W1,W2,W3 --threads 2 --rounds 5 --w3-rounds 2

For each workload and compiled backend it times one epoch (after a warm-up epoch) of:
serial with 1 thread; sync with N threads as ``nf.train`` runs it (the thread budget's
rule picks data-parallel or threaded BLAS); sync data-parallel forced (to show the
crossover the rule encodes); Hogwild. Runs are interleaved round-robin and the median
is reported, since the machine may be shared.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nnopt_fast as nf  # noqa: E402
from nnopt_fast.kernels import get_backend  # noqa: E402
from nnopt_fast.train.loop import make_config  # noqa: E402
from nnopt_fast.train.state import TrainState  # noqa: E402
from nnopt_fast.train.threads import choose_mode, thread_budget  # noqa: E402
from workloads import DROPOUT, LR, RUN_SEED, WORKLOADS, make_data, parse_names  # noqa: E402


class _Forced:
    """The data-parallel epoch whatever the rule says: BLAS 1 thread, Numba N threads."""

    def __init__(self, cfg):
        self.cfg = cfg

    def __enter__(self):
        self._blas = threadpool_limits(limits=1, user_api="blas")
        self._blas.__enter__()
        numba = sys.modules.get("numba")
        self._numba = None
        if numba is not None:
            self._numba = (numba, numba.get_num_threads())
            numba.set_num_threads(self.cfg.n_threads)
        return self.cfg

    def __exit__(self, *exc):
        if self._numba is not None:
            self._numba[0].set_num_threads(self._numba[1])
        self._blas.__exit__(*exc)
        return False


class _OneThread:
    """Everything on one thread: BLAS limited to 1."""

    def __init__(self, cfg):
        self.cfg = cfg

    def __enter__(self):
        self._blas = threadpool_limits(limits=1, user_api="blas")
        self._blas.__enter__()
        return self.cfg

    def __exit__(self, *exc):
        self._blas.__exit__(*exc)
        return False


class Run:
    """One (workload, backend, threads, mode) configuration with its own model and state."""

    def __init__(self, w, X, y, backend, n_threads, parallel, forced=False):
        net = nf.MLP(w.layers, random_state=RUN_SEED, dtype=np.float32)
        self.cfg = make_config(net, batch_size=w.batch_size, n_samples=len(X), l2=w.l2,
                               dropout=DROPOUT, seed=RUN_SEED, n_threads=n_threads,
                               parallel=parallel)
        self.be = get_backend(backend)
        self.state = TrainState(net, self.cfg)
        self.X, self.y = X, y
        self.forced = forced
        self.rng = np.random.default_rng(RUN_SEED)
        self.times = []
        self.mode = "data" if forced else choose_mode(self.cfg, backend)

    def epoch(self):
        perm = self.rng.permutation(len(self.X)).astype(np.int64)
        if self.cfg.n_threads == 1:
            # The 1-thread baseline is one thread in total: BLAS limited too (nf.train
            # with n_threads=1 leaves BLAS at the process's setting).
            ctx = _OneThread(self.cfg)
        elif self.forced:
            ctx = _Forced(self.cfg)
        else:
            ctx = thread_budget(self.cfg, self.be)
        with ctx as cfg:
            t0 = time.perf_counter()
            _, _, n_steps, status = self.be.run_epoch(cfg, self.state, self.X, self.y, None,
                                                      perm, LR, self.state.step)
            secs = time.perf_counter() - t0
        if status != 0:
            raise FloatingPointError("the benchmark run diverged")
        self.state.step += n_steps
        self.state.t += n_steps
        return secs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="W1,W2,W3")
    ap.add_argument("--backends", default="cython,numba")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="timed epochs per run (W1, W2)")
    ap.add_argument("--w3-rounds", type=int, default=2, help="timed epochs per run on W3")
    args = ap.parse_args(argv)
    N = args.threads
    print(f"# cores available: {len(os.sched_getaffinity(0))}; load average: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"| workload | backend | mode | rule | 1 thread s/epoch | {N} threads s/epoch "
          f"| speed-up |")
    print("|---|---|---|---|---|---|---|")
    for name in parse_names(args.workloads):
        w = WORKLOADS[name]
        X, y = make_data(w)
        rounds = args.w3_rounds if name == "W3" else args.rounds
        for backend in args.backends.split(","):
            runs = {
                "serial": Run(w, X, y, backend, 1, "sync"),
                "sync": Run(w, X, y, backend, N, "sync"),
                "sync, data-parallel forced": Run(w, X, y, backend, N, "sync", forced=True),
                "hogwild": Run(w, X, y, backend, N, "hogwild"),
            }
            if runs["sync"].mode == "data":
                del runs["sync, data-parallel forced"]
            for r in runs.values():
                r.epoch()  # warm-up: JIT compilation, buffers
            for _ in range(rounds):
                for r in runs.values():
                    r.times.append(r.epoch())
            base = statistics.median(runs["serial"].times)
            for label, r in runs.items():
                if label == "serial":
                    continue
                t = statistics.median(r.times)
                print(f"| {name} | {backend} | {label} | {r.mode} | {base:.4f} | {t:.4f} "
                      f"| {base / t:.2f}x |", flush=True)
        del X, y


if __name__ == "__main__":
    main()

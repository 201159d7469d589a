"""Thread scaling, 1 -> N threads, of the sync and Hogwild epochs on the BENCH.md workloads.

Run from the repository root::

    python bench/bench_threads.py --workloads W1,W2,W3 --threads 2 --rounds 5 --w3-rounds 2

For each workload and compiled backend it times one epoch (after a warm-up epoch) of:
serial with 1 thread (BLAS on 1 thread too); sync with N threads in each thread mode
(``thread_mode="data"``: each batch split among the threads; ``"blas"``: the serial
epoch with N BLAS threads), marking the one the thread budget's rule picks (what
``nf.train`` runs by default; for the smallest steps that is one thread, the baseline
itself); Hogwild's threaded epoch, marked when the rule keeps it (for tiny steps or too
few batches it runs as sync would instead). Runs are interleaved round-robin and
the median is reported, since the machine may be shared.
"""

import argparse
import dataclasses
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nnopt_fast as nf  # noqa: E402
from nnopt_fast.kernels import get_backend  # noqa: E402
from nnopt_fast.train.loop import make_config  # noqa: E402
from nnopt_fast.train.state import TrainState  # noqa: E402
from nnopt_fast.train.threads import choose_mode, thread_budget  # noqa: E402
from workloads import RUN_SEED, WORKLOADS, make_data, parse_names  # noqa: E402


class Run:
    """One (workload, backend, threads, mode) configuration with its own model and state."""

    def __init__(self, w, X, y, backend, n_threads, parallel, thread_mode="auto"):
        net = nf.MLP(w.layers, random_state=RUN_SEED, dtype=np.float32)
        self.cfg = make_config(net, batch_size=w.batch_size, n_samples=len(X), l2=w.l2,
                               optimizer=w.optimizer, dropout=w.dropout, seed=RUN_SEED,
                               n_threads=n_threads, parallel=parallel, thread_mode=thread_mode)
        self.lr = w.lr
        self.be = get_backend(backend)
        self.state = TrainState(net, self.cfg)
        self.X, self.y = X, y
        self.rng = np.random.default_rng(RUN_SEED)
        self.times = []
        self.mode = choose_mode(self.cfg, backend, len(X))

    def epoch(self):
        perm = self.rng.permutation(len(self.X)).astype(np.int64)
        # As nf.train runs it: with 1 thread BLAS is limited to 1 thread as well.
        with thread_budget(self.cfg, self.be) as cfg:
            t0 = time.perf_counter()
            _, _, n_steps, status = self.be.run_epoch(cfg, self.state, self.X, self.y, None,
                                                      perm, self.lr, self.state.step)
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
    print(f"| workload | backend | mode | nf.train default | 1 thread s/epoch "
          f"| {N} threads s/epoch | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for name in parse_names(args.workloads):
        w = WORKLOADS[name]
        X, y = make_data(w)
        rounds = args.w3_rounds if name == "W3" else args.rounds
        for backend in args.backends.split(","):
            runs = {
                "serial": Run(w, X, y, backend, 1, "sync"),
                "sync data": Run(w, X, y, backend, N, "sync", "data"),
                "sync blas": Run(w, X, y, backend, N, "sync", "blas"),
                "hogwild": Run(w, X, y, backend, N, "hogwild", "data"),  # the threaded epoch
            }
            rule = choose_mode(dataclasses.replace(runs["sync data"].cfg, thread_mode="auto"),
                               backend, len(X))
            hog_rule = choose_mode(dataclasses.replace(runs["hogwild"].cfg, thread_mode="auto"),
                                   backend, len(X))
            for r in runs.values():
                r.epoch()  # warm-up: JIT compilation, buffers
            for _ in range(rounds):
                for r in runs.values():
                    r.times.append(r.epoch())
            base = statistics.median(runs["serial"].times)
            if rule == "serial":
                # nf.train keeps such small steps on one thread: the baseline itself.
                print(f"| {name} | {backend} | sync: one thread | yes | {base:.4f} "
                      f"| {base:.4f} | 1.00x |", flush=True)
            for label, r in runs.items():
                if label == "serial":
                    continue
                t = statistics.median(r.times)
                picked = "yes" if label == f"sync {rule}" else ""
                if label == "hogwild":
                    picked = "yes" if hog_rule == "data" else f"no: runs as sync {hog_rule}"
                print(f"| {name} | {backend} | {label} | {picked} | {base:.4f} | {t:.4f} "
                      f"| {base / t:.2f}x |", flush=True)
        del X, y


if __name__ == "__main__":
    main()

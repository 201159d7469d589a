"""Ctrl-C latency: seconds from SIGINT to ``KeyboardInterrupt`` in ``nf.train``, per backend.

The job of issue 13: a 784-1024-1024-10 tanh network, batch 256, on 60,000 rows of
random float32 data (MNIST's shape), epochs of several seconds. For each backend a child
process trains with the defaults (all cores); once its first epoch is under way the parent
sends SIGINT at a random moment, and the child reports when ``nf.train`` raised. Both
timestamps come from ``time.monotonic``, one clock for every process on Linux.

Usage::

    python bench/bench_interrupt.py [--backends cython,numba] [--trials 5] [--rows 60000]

Prints, per backend, the median and the range of the delays, and the epoch length.
"""

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time

CHILD = r"""
import sys, time
import numpy as np
import nnopt_fast as nf

backend, rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
X = rng.normal(size=(rows, 784)).astype(np.float32)
y = rng.integers(0, 10, size=rows)
net = nf.MLP((784, 1024, 1024, 10), "tanh", "softmax", np.float32, random_state=0)
nf.train(net, X[:512], y[:512], epochs=1, batch_size=256, lr=0.01, backend=backend)  # compile
t0 = time.monotonic()
nf.train(net, X, y, epochs=1, batch_size=256, lr=0.01, backend=backend)
print("epoch", time.monotonic() - t0, flush=True)
print("ready", time.monotonic(), flush=True)
try:
    nf.train(net, X, y, epochs=100, batch_size=256, lr=0.01, backend=backend)
    print("finished", time.monotonic(), flush=True)
except KeyboardInterrupt:
    print("caught", time.monotonic(), flush=True)
    print("finite", bool(np.isfinite(net.params).all()), flush=True)
"""


def trial(backend, rows, rng):
    """One child: returns (epoch seconds, SIGINT-to-KeyboardInterrupt seconds)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, backend, str(rows)],
                            stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        epoch = float(proc.stdout.readline().split()[1])
        proc.stdout.readline()  # ready
        # Somewhere inside the first or second epoch of the long run.
        time.sleep(rng.uniform(0.5, 1.5) * epoch)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        word, stamp = proc.stdout.readline().split()
        if word != "caught":
            raise RuntimeError(f"{backend}: the child {word} instead of being interrupted")
        finite = proc.stdout.readline().split()[1] == "True"
        if not finite:
            raise RuntimeError(f"{backend}: non-finite weights after the interrupt")
        proc.wait(timeout=60)
        return epoch, float(stamp) - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="cython,numba")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--rows", type=int, default=60_000)
    args = ap.parse_args()
    rng = random.Random(0)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rows} rows, 784-1024-1024-10, batch 256")
    print("| backend | epoch (s) | delay median (s) | delay min–max (s) |")
    print("|---|---|---|---|")
    for backend in args.backends.split(","):
        runs = [trial(backend, args.rows, rng) for _ in range(args.trials)]
        epochs, delays = zip(*runs)
        print(f"| {backend} | {statistics.median(epochs):.2f} | {statistics.median(delays):.3f} "
              f"| {min(delays):.3f}–{max(delays):.3f} |", flush=True)


if __name__ == "__main__":
    main()

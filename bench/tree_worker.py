"""One nnopt_fast backend of a given source tree, timed epoch by epoch on request.

Started by ``runners.BaselineRunner`` with ``PYTHONPATH=<tree>/src``: builds the
workload's data and an ``NnoptRunner`` (this bench's code, that tree's library), prints
``ready``, then answers each line of stdin: ``epoch`` with one epoch's seconds, ``loss``
with the trained model's cross-entropy.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from runners import NnoptRunner  # noqa: E402
from workloads import WORKLOADS, make_data  # noqa: E402


def main():
    backend, name = sys.argv[1], sys.argv[2]
    workload = WORKLOADS[name]
    X, y = make_data(workload)
    runner = NnoptRunner(backend, workload, X, y)
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "epoch":
            print(runner.epoch(), flush=True)
        elif cmd == "loss":
            print(runner.final_loss(), flush=True)


if __name__ == "__main__":
    main()

"""One training epoch on W1-W5 for each nnopt_fast backend, PyTorch and scikit-learn.

Run explicitly (W3 only on request)::

    python -m pytest bench/bench_epochs.py --workloads W1,W2,W3,W4,W5 --epoch-rounds 5

For an interleaved comparison with ratios to PyTorch and to the compute floor, use
``python bench/report.py``, which prints BENCH.md's table.
"""

import math

import numpy as np
import pytest

from runners import RUNNERS, Unavailable, make_runner
from workloads import WORKLOADS, make_data

_DATA = {}


def _data(name):
    # One workload's data at a time: W3's X alone is 188 MB.
    if name not in _DATA:
        _DATA.clear()
        _DATA[name] = make_data(WORKLOADS[name])
    return _DATA[name]


@pytest.mark.parametrize("runner_name", RUNNERS)
def test_epoch(benchmark, workload_name, runner_name, epoch_rounds, best_gemm_rate):
    w = WORKLOADS[workload_name]
    X, y = _data(workload_name)
    try:
        runner = make_runner(runner_name, w, X, y)
    except Unavailable as exc:
        pytest.skip(f"{runner_name}: {exc}")
    benchmark.group = f"{workload_name} epoch"
    floor = w.flops / best_gemm_rate
    benchmark.extra_info.update(n_samples=w.n_samples, flops=w.flops, floor_s=floor,
                                note=runner.note)
    benchmark.pedantic(runner.epoch, rounds=epoch_rounds, warmup_rounds=1, iterations=1)
    loss = runner.final_loss()
    benchmark.extra_info["loss_after"] = loss
    # Checked after timing: the run trained (finite loss, below the uniform guess's log K).
    assert math.isfinite(loss)
    if w.batch_size < w.n_samples:
        assert loss < np.log(w.layers[-1])

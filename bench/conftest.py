"""Options and shared fixtures of the pytest-benchmark suites in bench/."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from workloads import parse_names  # noqa: E402

#: W3 (670 GFLOP per epoch) is left out by default: ask for it with --workloads.
DEFAULT_WORKLOADS = "W1,W2,W4,W5"


def pytest_addoption(parser):
    group = parser.getgroup("nnopt_fast benchmarks")
    group.addoption("--workloads", default=DEFAULT_WORKLOADS,
                    help="comma-separated workloads of bench_epochs.py "
                         f"(default {DEFAULT_WORKLOADS})")
    group.addoption("--epoch-rounds", type=int, default=5,
                    help="timed epochs per benchmark after one warm-up epoch (default 5)")


def pytest_generate_tests(metafunc):
    if "workload_name" in metafunc.fixturenames:
        metafunc.parametrize("workload_name", parse_names(metafunc.config.getoption("workloads")))


@pytest.fixture(scope="session")
def epoch_rounds(request):
    return request.config.getoption("epoch_rounds")


@pytest.fixture(scope="session")
def best_gemm_rate():
    """Best float32 GEMM rate (FLOP/s) of this session: the compute floor's denominator."""
    from runners import gemm_rate

    return gemm_rate(repeats=5)

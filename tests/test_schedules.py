"""Learning-rate schedules, the no-improvement rule and the epoch driver's hooks."""

import types

import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast.train import TrainState, make_config, run_epochs
from nnopt_fast.train.schedules import (
    Adaptive,
    Constant,
    InverseScaling,
    NoImprovement,
    make_schedule,
)


def test_inverse_scaling_counts_samples_from_where_it_resumes():
    s = InverseScaling(0.5, 0.25, samples_seen=8)
    assert s.rate == 0.5  # the first epoch runs at the initial rate
    s.epoch_end(4)
    assert s.rate == 0.5 / 13 ** 0.25  # (8 + 4 + 1) ** power_t
    resumed = make_schedule("invscaling", 0.5, power_t=0.25, samples_seen=12, rate=s.rate)
    assert resumed.rate == s.rate
    resumed.epoch_end(3)
    assert resumed.rate == 0.5 / 16 ** 0.25


def test_adaptive_divides_by_five_then_stops_below_the_floor():
    s = Adaptive(1e-5)
    assert s.plateau() == (False, " Setting learning rate to %f" % 2e-6)
    assert s.rate == 1e-5 / 5
    s.rate = 1e-6
    assert s.plateau() == (True, " Learning rate too small. Stopping.")
    assert Constant(0.1).plateau() == (True, " Stopping.")
    with pytest.raises(ValueError, match="schedule must be one of"):
        make_schedule("cosine", 0.1)


def test_no_improvement_on_the_loss():
    rule = NoImprovement(tol=0.1, patience=1, best=np.inf)
    for loss, count in [(1.0, 0), (0.95, 1), (0.5, 0), (0.45, 1), (0.44, 2)]:
        rule.update(loss)
        assert rule.count == count
    assert rule.best == 0.44 and rule.exhausted


def test_no_improvement_on_a_score_keeps_the_best():
    scores = iter([0.5, 0.7, np.nan, 0.71])
    best = []
    rule = NoImprovement(tol=0.05, patience=3, best=-np.inf, score=lambda: next(scores),
                         on_best=lambda: best.append(rule.best))
    counts = []
    for _ in range(4):
        rule.update(loss=None)
        counts.append(rule.count)
    # A NaN score compares False both ways and resets the count, as in scikit-learn.
    assert counts == [0, 0, 0, 1]
    assert best == [0.5, 0.7, 0.71]


def _setup(rng, n=64):
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    net = nf.MLP([3, 4, 2], dtype=np.float64, random_state=0)
    cfg = make_config(net, batch_size=16, n_samples=n)
    return net, cfg, TrainState(net, cfg), X, y


def test_driver_stops_at_a_plateau_and_lowers_an_adaptive_rate(rng):
    from nnopt_fast.kernels import reference

    net, cfg, state, X, y = _setup(rng)
    rates = []
    schedule = Adaptive(0.1)
    # tol = 10: no epoch improves enough, so the count grows by one an epoch (from 0
    # after epoch 1, which sets the first best) and exceeds patience=2 after epoch 4.
    rule = NoImprovement(tol=10.0, patience=2, best=np.inf)
    losses = run_epochs(reference, cfg, state, X, y, None, epochs=50, lr=schedule,
                        rng=np.random.default_rng(0), stopping=rule,
                        on_epoch=lambda e, loss, s: rates.append(schedule.rate))
    # Each plateau (epochs 4, 7, 10, ...) divides the rate by 5 and restarts the count...
    assert rates[:8] == [0.1] * 4 + [0.1 / 5] * 3 + [0.1 / 5 / 5]
    # ... until a plateau finds it at most 1e-6: 0.1 / 5**8 = 2.56e-7, at epoch 4 + 3 * 8.
    assert schedule.rate == pytest.approx(0.1 / 5**8)
    assert rule.stopped and len(losses) == 28
    constant = NoImprovement(tol=10.0, patience=2, best=np.inf)
    n_run = len(run_epochs(reference, cfg, state, X, y, None, epochs=50, lr=0.1,
                           rng=np.random.default_rng(0), stopping=constant))
    assert constant.stopped and n_run == 4


def test_driver_restores_the_epoch_on_keyboard_interrupt(rng):
    net, cfg, state, X, y = _setup(rng)
    before = net.params.copy()

    def run_epoch(cfg, state, X, T, sw, order, lr, step0):
        state.params[:] += 1.0  # half an epoch's worth of updates, then Ctrl-C
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_epochs(types.SimpleNamespace(run_epoch=run_epoch, BACKEND_NAME="fake"), cfg,
                   state, X, y, None, epochs=3, lr=0.1, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(net.params, before)


def test_driver_reorder_hook_and_loss_scale(rng):
    from nnopt_fast.kernels import reference

    net, cfg, state, X, y = _setup(rng)
    orders = []

    def reorder(order):
        orders.append(order.copy())
        return order[::-1].copy()

    data_div = 4.0
    seen = []
    run_epochs(reference, cfg, state, X, y, None, epochs=2, lr=0.05, reorder=reorder,
               data_div=data_div, on_epoch=lambda e, loss, s: seen.append(loss))
    np.testing.assert_array_equal(orders[0], np.arange(64))
    np.testing.assert_array_equal(orders[1], np.arange(64)[::-1])
    assert len(seen) == 2 and all(np.isfinite(seen))

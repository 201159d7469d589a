"""Learning-rate schedules, the no-improvement rule and the epoch driver's hooks."""

import types

import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast.train import TrainState, make_config, run_epochs
from nnopt_fast.train.schedules import (
    Adaptive,
    Constant,
    CosineDecay,
    ExponentialDecay,
    InverseScaling,
    NoImprovement,
    ReduceOnPlateau,
    StepDecay,
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
        make_schedule("sawtooth", 0.1)


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


def rates(schedule, n_epochs, n_samples=10):
    """The rate of each of ``n_epochs`` epochs, as the epoch driver reads them."""
    out = []
    for _ in range(n_epochs):
        out.append(schedule.rate)
        schedule.epoch_end(n_samples)
    return out


def test_step_decay_formula():
    # rate * gamma ** floor(e / step_size): epochs 0-2 at 0.4, 3-5 at 0.2, 6 at 0.1.
    assert rates(StepDecay(0.4, step_size=3, gamma=0.5), 7) == [0.4] * 3 + [0.2] * 3 + [0.1]


def test_exponential_decay_formula():
    assert rates(ExponentialDecay(0.5, gamma=0.9), 4) == [0.5, 0.5 * 0.9, 0.5 * 0.9 ** 2,
                                                          0.5 * 0.9 ** 3]


def test_cosine_decay_with_warm_up_formula():
    # W = 2, T = 6: warm-up 0.3 * 1/3, 0.3 * 2/3; then half a cosine over T - W = 4 epochs
    # from 0.3 down to min_rate 0.1 (reached at e = T and kept).
    got = rates(CosineDecay(0.3, total_epochs=6, warmup_epochs=2, min_rate=0.1), 8)
    cosine = [0.1 + 0.2 * (1 + np.cos(np.pi * k / 4)) / 2 for k in range(4)]
    np.testing.assert_allclose(got, [0.1, 0.2, *cosine, 0.1, 0.1], rtol=0, atol=1e-15)
    assert got[2] == 0.3  # the peak, right after the warm-up
    np.testing.assert_allclose(rates(CosineDecay(1.0, total_epochs=2), 3), [1.0, 0.5, 0.0],
                               atol=1e-15)


def test_reduce_on_plateau_rule():
    s = ReduceOnPlateau(1.0, factor=0.5, patience=2, min_delta=0.01, cooldown=1)
    s.train_begin({"loss": [], "val_loss": []})
    assert s._monitor.key == "val_loss"  # "auto" with validation data
    seen = []
    # improvements reset the count; 0.995 misses the best 1.0 by less than min_delta.
    for value in [1.0, 0.995, 0.999, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95]:
        s.observe({"loss": 0.0, "val_loss": value})
        seen.append(s.rate)
    # Two epochs without improvement (0.995, 0.999) halve the rate; the next epoch is
    # the cooldown (its 0.9 becomes the best, uncounted); two more without improvement
    # halve it again; one epoch of cooldown, then two more halve it a third time.
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]
    loss_only = ReduceOnPlateau(1.0)
    loss_only.train_begin({"loss": []})
    assert loss_only._monitor.key == "loss"
    with pytest.raises(ValueError, match="needs validation data"):
        ReduceOnPlateau(1.0, monitor="val_loss").train_begin({"loss": []})
    score = ReduceOnPlateau(1.0, monitor="val_score", patience=1)
    score.train_begin({"loss": [], "val_score": []})
    score.observe({"val_score": 0.5})
    score.observe({"val_score": 0.6})  # a score improves upwards
    assert score.rate == 1.0
    score.observe({"val_score": 0.55})
    assert score.rate == pytest.approx(0.1)


def test_schedule_state_round_trip():
    a = CosineDecay(0.3, total_epochs=10, warmup_epochs=2)
    rates(a, 4)
    b = CosineDecay(0.3, total_epochs=10, warmup_epochs=2)
    b.set_state(a.get_state())
    assert rates(b, 3) == rates(a, 3)
    s = InverseScaling(0.5)
    rates(s, 2)
    assert s.get_state() == {"rate": 0.5 / 21 ** 0.5, "samples_seen": 20}


@pytest.mark.parametrize("make, match", [
    (lambda: StepDecay(0.1, step_size=0), "step_size must be >= 1"),
    (lambda: StepDecay(-0.1, step_size=2), "rate must be > 0"),
    (lambda: ExponentialDecay(0.1, gamma=1.5), "gamma must be <= 1"),
    (lambda: CosineDecay(0.1, total_epochs=3, warmup_epochs=3), "total_epochs must be >= 4"),
    (lambda: CosineDecay(0.1, total_epochs=3, min_rate=0.2), "min_rate must be <= 0.1"),
    (lambda: ReduceOnPlateau(0.1, factor=1.0), "factor must be < 1"),
    (lambda: ReduceOnPlateau(0.1, monitor="accuracy"), "monitor must be"),
])
def test_schedule_arguments_are_checked(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_every_optimizer_follows_the_schedule(rng, optimizer):
    """Two epochs of StepDecay(0.1, 1, 0.5) equal one epoch at 0.1 then one at 0.05."""
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    kw = dict(optimizer=optimizer, batch_size=16, dropout=0.1, random_state=0,
              backend="numpy")
    decayed = nf.MLP([3, 6, 2], random_state=0)
    hist = nf.train(decayed, X, y, epochs=2, lr=StepDecay(0.1, step_size=1, gamma=0.5), **kw)
    assert hist.lr == [0.1, 0.05]
    by_hand = nf.MLP([3, 6, 2], random_state=0)
    first = nf.train(by_hand, X, y, epochs=1, lr=0.1, **kw)
    nf.train(by_hand, X, y, epochs=1, lr=0.05, state=first.state, **kw)
    np.testing.assert_array_equal(decayed.params, by_hand.params)


def test_inverse_scaling_in_nf_train_is_scikit_learns(rng):
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    hist = nf.train(nf.MLP([3, 4, 2]), X, y, epochs=3, lr=InverseScaling(0.2, power_t=0.5),
                    backend="numpy")
    # scikit-learn's rule: rate_init / (t + 1) ** power_t, t = samples seen so far.
    assert hist.lr == [0.2, 0.2 / 51 ** 0.5, 0.2 / 101 ** 0.5]


def test_nf_train_copies_the_schedule_it_is_given(rng):
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    schedule = ExponentialDecay(0.1, gamma=0.5)
    for _ in range(2):
        hist = nf.train(nf.MLP([3, 4, 2]), X, y, epochs=2, lr=schedule, backend="numpy")
        assert hist.lr == [0.1, 0.05]
    assert schedule.epoch == 0

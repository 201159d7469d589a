"""nf.train: a hand-worked step, loss reduction, divergence, history, callbacks, validation."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnopt_fast as nf


def make_task(rng, n=240, n_in=5, n_classes=3):
    """A learnable task: labels are the argmax of a fixed linear map of Gaussian X."""
    X = rng.normal(size=(n, n_in))
    y = np.argmax(X @ rng.normal(size=(n_in, n_classes)), axis=1)
    return X, y


def test_one_hand_worked_sgd_step():
    # Net 1 -> 1 (relu) -> 1 (identity output, squared error), float64:
    #   W1 = 0.5, b1 = 0, W2 = 1, b2 = 0.5; two samples x = (2, 1), y = (3, 1); m = 2.
    net = nf.MLP.from_weights([[[0.5]], [[1.0]]], [[0.0], [0.5]], activation="relu",
                              output="identity", dtype=np.float64)
    X = np.array([[2.0], [1.0]])
    y = np.array([3.0, 1.0])
    # Forward:
    #   sample 1: z1 = 2 * 0.5 + 0 = 1,   a1 = relu(1) = 1,     z2 = 1 * 1 + 0.5 = 1.5
    #   sample 2: z1 = 1 * 0.5 + 0 = 0.5, a1 = relu(0.5) = 0.5, z2 = 0.5 * 1 + 0.5 = 1.0
    # Loss: 1/2 (1.5 - 3)^2 = 1.125 and 1/2 (1 - 1)^2 = 0, mean 0.5625.
    # Penalty with l2 = 0.2: 0.2 / (2 m) * (W1^2 + W2^2) = 0.05 * (0.25 + 1) = 0.0625.
    # So the epoch's cost (taken before the update) is 0.5625 + 0.0625 = 0.625.
    # Backward: dz2 = z2 - y = (-1.5, 0).
    #   dW2 = mean(a1 * dz2) = (1 * -1.5 + 0.5 * 0) / 2 = -0.75;  db2 = mean(dz2) = -0.75
    #   dz1 = dz2 * W2 * relu'(z1) = (-1.5, 0)
    #   dW1 = mean(x * dz1) = (2 * -1.5 + 1 * 0) / 2 = -1.5;      db1 = -0.75
    # L2 adds (l2 / m) W = 0.1 W to the weights' gradients only:
    #   gW1 = -1.5 + 0.1 * 0.5 = -1.45;  gW2 = -0.75 + 0.1 * 1 = -0.65
    # SGD step with lr = 0.1:
    #   W1 = 0.5 + 0.145 = 0.645;  b1 = 0 + 0.075 = 0.075
    #   W2 = 1 + 0.065 = 1.065;    b2 = 0.5 + 0.075 = 0.575
    hist = nf.train(net, X, y, epochs=1, batch_size=None, lr=0.1, l2=0.2, shuffle=False,
                    backend="numpy")
    assert hist.loss == [pytest.approx(0.625, abs=1e-15)]
    np.testing.assert_allclose(net.coefs_[0], [[0.645]], atol=1e-15)
    np.testing.assert_allclose(net.intercepts_[0], [0.075], atol=1e-15)
    np.testing.assert_allclose(net.coefs_[1], [[1.065]], atol=1e-15)
    np.testing.assert_allclose(net.intercepts_[1], [0.575], atol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "auto"])
@pytest.mark.parametrize("batch_size, lr, epochs", [
    (None, 0.5, 40),   # batch gradient descent: one step per epoch over all of X
    (1, 0.01, 3),      # stochastic gradient descent: one sample per step
    (16, 0.1, 10),     # mini-batch
])
def test_batch_stochastic_and_mini_batch_reduce_the_loss(rng, backend, batch_size, lr, epochs):
    X, y = make_task(rng)
    net = nf.MLP([5, 16, 3], random_state=0)
    before = net.loss(X, y)
    hist = nf.train(net, X, y, epochs=epochs, batch_size=batch_size, lr=lr, random_state=0,
                    backend=backend)
    after = net.loss(X, y)
    assert len(hist.loss) == epochs and all(np.isfinite(hist.loss))
    assert after < 0.5 * before
    assert hist.loss[-1] < hist.loss[0]
    assert np.mean(net.predict(X) == y) > 0.85


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_every_optimizer_reduces_the_loss(rng, optimizer):
    X, y = make_task(rng)
    net = nf.MLP([5, 16, 3], random_state=1)
    before = net.loss(X, y)
    lr = 0.01 if optimizer == "adam" else 0.05
    nf.train(net, X, y, epochs=8, batch_size=16, lr=lr, optimizer=optimizer, random_state=1,
             backend="numpy")
    assert net.loss(X, y) < 0.5 * before


def test_regularized_runs_with_dropout_reduce_the_loss(rng):
    X, y = make_task(rng)
    for kwargs in ({"l2": 1.0}, {"l1": 1.0}, {"l1": 1.0, "l1_method": "proximal"},
                   {"dropout": 0.2}):
        net = nf.MLP([5, 16, 3], random_state=2)
        before = net.loss(X, y)
        nf.train(net, X, y, epochs=8, batch_size=16, lr=0.1, random_state=2, backend="numpy",
                 **kwargs)
        assert net.loss(X, y) < 0.6 * before, kwargs


def test_proximal_l1_zeros_the_weights_of_useless_inputs(rng):
    X, y = make_task(rng, n_in=3)
    X = np.hstack([X, rng.normal(size=(len(X), 5))])  # five pure-noise inputs
    zeros = {}
    for method in ("proximal", "subgradient"):
        net = nf.MLP([8, 3], dtype=np.float64, random_state=0)
        nf.train(net, X, y, epochs=30, batch_size=32, lr=0.1, l1=40.0, l1_method=method,
                 random_state=0, backend="numpy")
        W = net.coefs_[0]
        zeros[method] = (np.count_nonzero(W[:3] == 0), np.count_nonzero(W[3:] == 0))
        assert np.mean(net.predict(X) == y) > 0.8
    signal, noise = zeros["proximal"]
    assert noise >= 8 and noise >= 2 * signal  # of the 15 weights leaving the noise inputs
    assert zeros["subgradient"] == (0, 0)  # the subgradient only hovers around 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings on the way
def test_divergence_raises_and_restores_the_weights_of_the_failing_epoch(rng):
    X = rng.normal(size=(64, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    net = nf.MLP([3, 4, 1], activation="identity", output="identity", dtype=np.float64,
                 random_state=0)
    # starts[k] = weights at the start of epoch k + 1, recorded after every epoch.
    starts = [net.params.copy()]
    with pytest.raises(nf.DivergenceError) as info:
        nf.train(net, X, y, epochs=50, batch_size=16, lr=0.5, random_state=0, backend="numpy",
                 callbacks=[lambda n, h: starts.append(n.params.copy())])
    err = info.value
    assert err.epoch > 1  # a later epoch, so "the start of the failing epoch" is not the init
    assert f"epoch {err.epoch}" in str(err) and "lr=0.5" in str(err)
    assert "smaller learning rate" in str(err)
    assert isinstance(err, FloatingPointError)
    assert np.isfinite(net.params).all()
    np.testing.assert_array_equal(net.params, starts[err.epoch - 1])
    assert np.isfinite(net.predict(X)).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_in_the_first_epoch_restores_the_initial_weights(rng):
    X, y = make_task(rng)
    net = nf.MLP([5, 8, 3], dtype=np.float32, random_state=0)
    init = net.params.copy()
    with pytest.raises(nf.DivergenceError, match="epoch 1"):
        nf.train(net, X * 1e3, y, epochs=3, batch_size=8, lr=1e30, backend="numpy")
    np.testing.assert_array_equal(net.params, init)


def test_history_and_validation(rng):
    X, y = make_task(rng)
    X_val, y_val = make_task(np.random.default_rng(7))
    net = nf.MLP([5, 8, 3], random_state=0)
    hist = nf.train(net, X, y, epochs=4, batch_size=32, lr=0.1, X_val=X_val, y_val=y_val,
                    backend="numpy", random_state=0)
    assert isinstance(hist, nf.History)
    assert hist.epochs == len(hist.loss) == len(hist.val_loss) == len(hist.val_score) == 4
    assert len(hist.epoch_time) == 4 and all(t >= 0 for t in hist.epoch_time)
    assert hist.backend == "numpy"
    # The last entries describe the trained model.
    assert hist.val_loss[-1] == pytest.approx(net.loss(X_val, y_val), rel=1e-6)
    assert hist.val_score[-1] == pytest.approx(np.mean(net.predict(X_val) == y_val))
    assert "4 epochs" in repr(hist) and "numpy" in repr(hist)
    assert list(hist.history) == ["loss", "val_loss", "val_score", "lr", "epoch_time"]
    assert hist.history["loss"] is hist.loss and hist.lr == [0.1] * 4
    assert hist.epoch == [1, 2, 3, 4]
    no_val = nf.train(net, X, y, epochs=2, backend="numpy")
    assert no_val.val_loss == [] and no_val.val_score == []
    assert list(no_val.history) == ["loss", "lr", "epoch_time"]


def test_history_as_a_frame_and_csv(rng, tmp_path):
    import pandas as pd

    X, y = make_task(rng)
    hist = nf.train(nf.MLP([5, 8, 3]), X, y, epochs=3, validation_split=0.2,
                    train_score=True, backend="numpy")
    frame = hist.to_frame()
    assert list(frame.columns) == ["loss", "score", "val_loss", "val_score", "lr",
                                   "epoch_time"]
    assert list(frame.index) == [1, 2, 3] and frame.index.name == "epoch"
    np.testing.assert_array_equal(frame["val_loss"], hist.val_loss)
    path = tmp_path / "history.csv"
    hist.to_csv(path)
    back = pd.read_csv(path, index_col="epoch")
    pd.testing.assert_frame_equal(back, frame)
    assert hist.to_csv() == path.read_text()
    assert hist.to_dict()["epoch"] == [1, 2, 3]


def test_train_score_is_the_accuracy_after_each_epoch(rng):
    X, y = make_task(rng)
    net = nf.MLP([5, 8, 3], random_state=0)
    hist = nf.train(net, X, y, epochs=2, train_score=True, backend="numpy")
    assert hist.score[-1] == np.mean(net.predict(X) == y)


def test_validation_split_holds_out_the_last_rows_of_each_class(rng):
    X, y = make_task(rng, n=103)
    kw = dict(epochs=2, batch_size=16, lr=0.1, backend="numpy", random_state=0)
    split = nf.MLP([5, 8, 3], random_state=0)
    hist = nf.train(split, X, y, validation_split=0.2, **kw)
    # The tail of each class: the last round(0.2 * n_k) of its rows, order kept.
    val = np.sort(np.concatenate([np.flatnonzero(y == k)[-int(np.floor(0.2 * (y == k).sum()
                                                                      + 0.5)):]
                                  for k in range(3)]))
    train_rows = np.setdiff1d(np.arange(103), val)
    by_hand = nf.MLP([5, 8, 3], random_state=0)
    explicit = nf.train(by_hand, X[train_rows], y[train_rows], X_val=X[val], y_val=y[val],
                        **kw)
    np.testing.assert_array_equal(split.params, by_hand.params)
    assert hist.val_loss == explicit.val_loss and hist.val_score == explicit.val_score
    # Regression targets: the last rows.
    Y = X @ rng.normal(size=5)
    reg = nf.MLP([5, 4, 1], output="identity", random_state=0)
    nf.train(reg, X, Y, validation_split=0.25, **kw)
    reg_hand = nf.MLP([5, 4, 1], output="identity", random_state=0)
    nf.train(reg_hand, X[:77], Y[:77], X_val=X[77:], y_val=Y[77:], **kw)
    np.testing.assert_array_equal(reg.params, reg_hand.params)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(validation_split=0.0), ValueError, "validation_split must be > 0"),
    (dict(validation_split=1.0), ValueError, "validation_split must be < 1"),
    (dict(validation_split=0.2, X_val=np.zeros((2, 5)), y_val=[0, 1]), ValueError,
     "either validation_split or X_val"),
    (dict(validation_split=0.001), ValueError, "leaves no validation rows"),
    (dict(lr="fast"), TypeError, "lr must be a real number"),
])
def test_validation_split_and_lr_arguments_are_checked(rng, kwargs, error, match):
    X, y = make_task(rng)
    with pytest.raises(error, match=match):
        nf.train(nf.MLP([5, 8, 3]), X, y, backend="numpy", **kwargs)


def test_class_weight_with_a_validation_split_weighs_the_training_rows(rng):
    X, y = make_task(rng)
    kw = dict(epochs=2, backend="numpy", random_state=0)
    a = nf.MLP([5, 8, 3], random_state=0)
    nf.train(a, X, y, validation_split=0.25, class_weight="balanced", **kw)
    train_rows = np.setdiff1d(np.arange(len(y)), np.concatenate(
        [np.flatnonzero(y == k)[-int(np.floor(0.25 * (y == k).sum() + 0.5)):]
         for k in range(3)]))
    yt = y[train_rows]
    weights = len(yt) / (3 * np.bincount(yt).astype(np.float64))
    b = nf.MLP([5, 8, 3], random_state=0)
    nf.train(b, X[train_rows], yt, sample_weight=weights[yt], **kw)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("labels, error", [
    (np.array(["cat", "dog", "emu"] * 80), TypeError),
    (np.repeat([1, 2, 3], 80), ValueError),
])
def test_labels_of_the_wrong_kind_point_to_the_estimators(rng, labels, error):
    X = rng.normal(size=(240, 5))
    with pytest.raises(error, match="MLPClassifier encodes labels of any kind"):
        nf.train(nf.MLP([5, 8, 3]), X, labels, backend="numpy")


def test_regression_validation_score_is_r2(rng):
    X = rng.normal(size=(120, 4))
    Y = np.stack([X @ rng.normal(size=4), X[:, 0] ** 2], axis=1)
    net = nf.MLP([4, 12, 2], output="identity", dtype=np.float64, random_state=0)
    hist = nf.train(net, X[:90], Y[:90], epochs=5, batch_size=16, lr=0.05,
                    X_val=X[90:], y_val=Y[90:], backend="numpy", random_state=0)
    P = net.predict(X[90:])
    r2 = 1 - ((Y[90:] - P) ** 2).sum(0) / ((Y[90:] - Y[90:].mean(0)) ** 2).sum(0)
    assert hist.val_score[-1] == pytest.approx(r2.mean(), rel=1e-9)


def test_multilabel_logistic_output_trains(rng):
    X = rng.normal(size=(200, 4))
    Y = (X[:, :2] > 0).astype(int)  # two independent labels
    net = nf.MLP([4, 8, 2], output="logistic", random_state=0)
    hist = nf.train(net, X, Y, epochs=15, batch_size=16, lr=0.3, X_val=X, y_val=Y,
                    backend="numpy", random_state=0)
    subset_accuracy = np.mean(np.all(net.predict(X) == Y, axis=1))
    assert hist.val_score[-1] == pytest.approx(subset_accuracy)
    assert subset_accuracy > 0.8


def test_callbacks_see_every_epoch_and_can_stop_training(rng):
    X, y = make_task(rng)
    seen = []

    def record(net, hist):
        seen.append((net, hist.epochs, hist.loss[-1]))

    def stop_after_3(net, hist):
        return hist.epochs >= 3

    net = nf.MLP([5, 8, 3], random_state=0)
    hist = nf.train(net, X, y, epochs=10, callbacks=[record, stop_after_3], backend="numpy")
    assert hist.epochs == 3
    assert [e for _, e, _ in seen] == [1, 2, 3]
    assert all(n is net for n, _, _ in seen)
    assert [l for _, _, l in seen] == hist.loss


def test_same_seed_same_result_other_seed_other_result(rng):
    X, y = make_task(rng)

    def fit(seed, shuffle=True):
        net = nf.MLP([5, 8, 3], random_state=0)
        nf.train(net, X, y, epochs=2, batch_size=16, lr=0.1, dropout=0.1, shuffle=shuffle,
                 random_state=seed, backend="numpy")
        return net.params

    np.testing.assert_array_equal(fit(3), fit(3))
    assert not np.array_equal(fit(3), fit(4))


def test_without_shuffle_or_dropout_the_seed_does_not_matter(rng):
    X, y = make_task(rng)
    results = []
    for seed in (0, 1):
        net = nf.MLP([5, 8, 3], random_state=0)
        nf.train(net, X, y, epochs=2, batch_size=16, shuffle=False, random_state=seed,
                 backend="numpy")
        results.append(net.params)
    np.testing.assert_array_equal(*results)


def test_train_continues_from_the_current_weights(rng):
    """train updates the net in place: two calls of one epoch continue, not restart."""
    X, y = make_task(rng)
    net = nf.MLP([5, 8, 3], random_state=0)
    first = nf.train(net, X, y, epochs=1, batch_size=None, lr=0.5, backend="numpy")
    second = nf.train(net, X, y, epochs=1, batch_size=None, lr=0.5, backend="numpy")
    assert second.loss[0] < first.loss[0]


def test_verbose_prints_one_plain_line_per_epoch_off_a_terminal(rng, capsys):
    X, y = make_task(rng)
    hist = nf.train(nf.MLP([5, 8, 3]), X, y, epochs=3, X_val=X, y_val=y, verbose=True,
                    backend="numpy")
    lines = capsys.readouterr().err.strip().splitlines()
    assert [l.split()[:2] for l in lines] == [["epoch", "1/3"], ["epoch", "2/3"],
                                              ["epoch", "3/3"]]
    assert lines[-1] == (f"epoch 3/3 loss={hist.loss[-1]:.4g} val_loss={hist.val_loss[-1]:.4g}"
                         f" val_score={hist.val_score[-1]:.4g}")


def test_small_losses_print_with_significant_digits():
    from nnopt_fast.train.progress import format_record

    assert format_record({"loss": 1.23456e-7, "lr": 0.1, "val_loss": 0.5}) == \
        "loss=1.235e-07 val_loss=0.5"


# A regression run whose loss falls below 1e-4 within a few epochs: at four decimals it
# would read 0.0000.
PROGRESS_RUN = textwrap.dedent("""
    import numpy as np
    import nnopt_fast as nf

    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 3))
    y = X @ np.array([0.5, -0.25, 0.125]) + 1e-3 * rng.normal(size=256)
    net = nf.MLP([3, 1], activation="identity", output="identity", dtype=np.float64,
                 random_state=0)
    hist = nf.train(net, X, y, epochs=40, batch_size=8, lr=0.05, optimizer="adam",
                    verbose=True, backend="numpy", random_state=0)
    print("final loss %.4g" % hist.loss[-1])
""")


def test_progress_bar_on_a_pseudo_terminal():
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    # A terminal of 24 rows and 100 columns (a new pseudo-terminal has size 0 x 0).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", PROGRESS_RUN], stdin=slave, stdout=slave,
                            stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, screen
    final = screen.split("final loss ")[1].split()[0]
    assert float(final) < 1e-4
    # What a person sees: the bar redrawn in place ("\r"), its last state complete.
    bar = [part for part in screen.replace("\r\n", "\n").split("\r") if "epoch" in part][-1]
    assert "40/40" in bar and "100%" in bar
    assert f"loss={final}" in bar
    assert "0.0000" not in screen
    assert "epoch 1/40" not in screen  # no plain lines on a terminal


def test_quiet_by_default(rng, capsys):
    X, y = make_task(rng)
    nf.train(nf.MLP([5, 8, 3]), X, y, epochs=2, backend="numpy")
    assert capsys.readouterr() == ("", "")


ZERO_WEIGHT_RUNS = [
    ("numpy", 1, "sync"), ("cython", 1, "sync"), ("numba", 1, "sync"),
    ("cython", 2, "sync"), ("numba", 2, "sync"), ("cython", 2, "hogwild"),
    ("numba", 2, "hogwild"),
]


@pytest.mark.parametrize("backend,n_threads,parallel", ZERO_WEIGHT_RUNS)
def test_a_batch_whose_weights_sum_to_zero_raises_and_restores(rng, backend, n_threads,
                                                                 parallel):
    from nnopt_fast.train.threads import available_cores

    if n_threads > available_cores():
        pytest.skip("needs 2 cores")
    X, y = make_task(rng, n=64)
    sw = np.ones(64)
    sw[16:32] = 0.0                        # the second batch of 16, without shuffling
    net = nf.MLP((5, 8, 3), random_state=0)
    nf.train(net, X, y, epochs=1, batch_size=16, sample_weight=np.ones(64), shuffle=False,
             backend=backend)          # a first epoch that succeeds: "before" is not init
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"sample_weight: in epoch 1, .*zero total sample"):
        nf.train(net, X, y, epochs=2, batch_size=16, sample_weight=sw, shuffle=False,
                 backend=backend, n_threads=n_threads, parallel=parallel,
                 thread_mode="data")
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("backend", ["numpy", "cython", "numba"])
def test_backends_raise_zero_division_for_a_zero_weight_batch(rng, backend):
    from nnopt_fast.kernels import get_backend
    from nnopt_fast.train import loop
    from nnopt_fast.train.state import TrainState

    X, y = make_task(rng, n=48)
    sw = np.ones(48)
    sw[32:] = 0.0
    net = nf.MLP((5, 8, 3), random_state=0, dtype=np.float64)
    cfg = loop.make_config(net, batch_size=16, n_samples=48)
    state = TrainState(net, cfg)
    with pytest.raises(ZeroDivisionError, match="batch 2 of the epoch has zero total"):
        get_backend(backend).run_epoch(cfg, state, X, y.astype(np.int64), sw,
                                       np.arange(48, dtype=np.int64), 0.1, 0)

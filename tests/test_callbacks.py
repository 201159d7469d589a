"""nf.train's callbacks: the protocol, EarlyStopping, ModelCheckpoint and LambdaCallback."""

import numpy as np
import pytest

import nnopt_fast as nf


def noisy_task(rng, n=120):
    """Labels of a linear map with 30% of them redrawn: a large network overfits them."""
    X = rng.normal(size=(n, 5))
    y = np.argmax(X @ rng.normal(size=(5, 3)), axis=1)
    flip = rng.random(n) < 0.3
    y[flip] = rng.integers(0, 3, flip.sum())
    return X, y


class Recorder(nf.Callback):
    """Every hook call, and the weights after every epoch."""

    def __init__(self):
        self.calls, self.params = [], {}

    def on_train_begin(self, net, history):
        self.calls.append(("train_begin", history.epochs))

    def on_epoch_begin(self, epoch, net, history):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, net, history):
        self.calls.append(("epoch_end", epoch, history.epochs))
        self.params[epoch] = net.params.copy()

    def on_train_end(self, net, history):
        self.calls.append(("train_end", history.epochs))


def test_hooks_run_in_order_and_a_resumed_run_goes_on_counting(rng):
    X, y = noisy_task(rng)
    rec = Recorder()
    net = nf.MLP([5, 8, 3], random_state=0)
    hist = nf.train(net, X, y, epochs=2, callbacks=[rec], backend="numpy")
    nf.train(net, X, y, epochs=1, callbacks=[rec], state=hist.state, backend="numpy")
    assert rec.calls == [("train_begin", 0), ("epoch_begin", 1), ("epoch_end", 1, 1),
                         ("epoch_begin", 2), ("epoch_end", 2, 2), ("train_end", 2),
                         ("train_begin", 0), ("epoch_begin", 3), ("epoch_end", 3, 1),
                         ("train_end", 1)]


def test_lambda_callback_and_plain_functions_share_the_protocol(rng):
    X, y = noisy_task(rng)
    seen = []
    lam = nf.LambdaCallback(on_train_begin=lambda net, h: seen.append("begin"),
                            on_epoch_end=lambda epoch, net, h: epoch >= 2)
    plain = []
    hist = nf.train(nf.MLP([5, 8, 3]), X, y, epochs=10, backend="numpy",
                    callbacks=[lam, lambda net, h: plain.append(h.epochs)])
    assert seen == ["begin"] and plain == [1, 2]
    assert hist.epochs == 2 and hist.stopped_epoch == 2
    with pytest.raises(TypeError, match="on_epoch_end must be callable"):
        nf.LambdaCallback(on_epoch_end=3)
    with pytest.raises(TypeError, match="callbacks must be a list of callables"):
        nf.train(nf.MLP([5, 8, 3]), X, y, callbacks=[3])


def test_early_stopping_restores_the_best_weights(rng):
    X, y = noisy_task(rng)
    rec = Recorder()
    stop = nf.EarlyStopping(patience=4)
    net = nf.MLP([5, 64, 3], random_state=0)
    hist = nf.train(net, X, y, epochs=300, lr=0.05, optimizer="adam", batch_size=16,
                    validation_split=0.25, callbacks=[rec, stop], backend="numpy",
                    random_state=0)
    best = int(np.argmin(hist.val_loss)) + 1
    assert stop.best_epoch == best and stop.best == min(hist.val_loss)
    # It stopped `patience` epochs after the best, long before 300, and put back the
    # best epoch's weights, which are not the last epoch's.
    assert hist.stopped_epoch == stop.stopped_epoch == best + 4 == hist.epochs
    assert hist.restored_epoch == best
    np.testing.assert_array_equal(net.params, rec.params[best])
    assert not np.array_equal(rec.params[best], rec.params[hist.epochs])


def test_early_stopping_without_restoring_and_on_a_score(rng):
    X, y = noisy_task(rng)
    rec = Recorder()
    stop = nf.EarlyStopping(monitor="val_score", patience=3, restore_best=False)
    net = nf.MLP([5, 64, 3], random_state=0)
    hist = nf.train(net, X, y, epochs=300, lr=0.05, optimizer="adam", batch_size=16,
                    X_val=X[:30], y_val=y[:30], callbacks=[rec, stop], backend="numpy")
    assert stop.best == max(hist.val_score) and hist.epochs < 300
    assert hist.restored_epoch is None
    np.testing.assert_array_equal(net.params, rec.params[hist.epochs])


@pytest.mark.parametrize("monitor, match", [("val_loss", "needs validation data"),
                                            ("score", "needs train_score=True")])
def test_a_monitor_the_run_does_not_record_is_an_error_before_training(rng, monitor, match):
    X, y = noisy_task(rng)
    net = nf.MLP([5, 8, 3], random_state=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match=match):
        nf.train(net, X, y, callbacks=[nf.EarlyStopping(monitor=monitor)], backend="numpy")
    np.testing.assert_array_equal(net.params, before)


def test_model_checkpoint_every_n_epochs_resumes_exactly(rng, tmp_path):
    X, y = noisy_task(rng)
    kw = dict(lr=0.01, optimizer="adam", dropout=0.2, batch_size=16, random_state=3,
              backend="numpy")
    rec = Recorder()
    ckpt = nf.ModelCheckpoint(tmp_path / "run-{epoch}.npz", every=2)
    whole = nf.MLP([5, 16, 3], random_state=0)
    nf.train(whole, X, y, epochs=5, callbacks=[rec, ckpt], **kw)
    assert ckpt.saved == [(2, str(tmp_path / "run-2.npz")), (4, str(tmp_path / "run-4.npz"))]
    saved = nf.load_checkpoint(tmp_path / "run-2.npz")
    np.testing.assert_array_equal(saved.net.params, rec.params[2])
    assert saved.state.epoch == 2
    # Three more epochs from the epoch-2 file reach the five-epoch run's weights.
    hist = nf.train(saved.net, X, y, epochs=3, state=saved.state, **kw)
    assert hist.epoch == [3, 4, 5]
    np.testing.assert_array_equal(saved.net.params, whole.params)


def test_model_checkpoint_on_the_best_epoch(rng, tmp_path):
    X, y = noisy_task(rng)
    rec = Recorder()
    ckpt = nf.ModelCheckpoint(tmp_path / "best.npz", save_best=True)
    hist = nf.train(nf.MLP([5, 64, 3], random_state=0), X, y, epochs=25, lr=0.05,
                    optimizer="adam", batch_size=16, validation_split=0.25,
                    callbacks=[rec, ckpt], backend="numpy")
    improving = [e for e, v in zip(hist.epoch, hist.val_loss)
                 if v < min(hist.val_loss[:e - 1], default=np.inf)]
    assert [e for e, _ in ckpt.saved] == improving and len(improving) < hist.epochs
    best = improving[-1]
    np.testing.assert_array_equal(nf.load_checkpoint(tmp_path / "best.npz").net.params,
                                  rec.params[best])

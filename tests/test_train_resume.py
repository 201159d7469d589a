"""nf.train's exact resume: history.state, checkpoint files, and Ctrl-C keeping the run."""

import json
import sys
import textwrap

import numpy as np
import pytest
from interrupts import interrupt_when_ready

import nnopt_fast as nf
from nnopt_fast.train.schedules import CosineDecay, ReduceOnPlateau

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam"]


def make_task(rng, n=150, n_in=5, n_classes=3):
    X = rng.normal(size=(n, n_in))
    y = np.argmax(X @ rng.normal(size=(n_in, n_classes)), axis=1)
    return X, y


def settings(optimizer, backend):
    return dict(batch_size=16, lr=0.01 if optimizer == "adam" else 0.05, optimizer=optimizer,
                dropout=0.2, random_state=7, backend=backend, n_threads=1)


@pytest.mark.parametrize("backend", ["numpy", "auto"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_two_epochs_equal_one_plus_save_load_plus_one(rng, tmp_path, optimizer, backend):
    X, y = make_task(rng)
    kw = settings(optimizer, backend)
    whole = nf.MLP([5, 12, 3], random_state=0)
    full = nf.train(whole, X, y, epochs=2, **kw)

    first = nf.MLP([5, 12, 3], random_state=0)
    half = nf.train(first, X, y, epochs=1, **kw)
    path = tmp_path / "run.npz"
    nf.save_checkpoint(path, first, half.state)
    saved = nf.load_checkpoint(path)
    second = nf.train(saved.net, X, y, epochs=1, state=saved.state, **kw)

    np.testing.assert_array_equal(saved.net.params, whole.params)
    assert second.loss == full.loss[1:] and second.epoch == [2]
    # A checkpoint path as the state loads its weights into the network given.
    again = nf.MLP([5, 12, 3], random_state=99)
    nf.train(again, X, y, epochs=1, state=str(path), **kw)
    np.testing.assert_array_equal(again.params, whole.params)
    # What resuming fixes: a second call without the state starts its optimizer afresh.
    fresh = nf.MLP([5, 12, 3], random_state=0)
    nf.train(fresh, X, y, epochs=1, **kw)
    nf.train(fresh, X, y, epochs=1, **kw)
    assert not np.array_equal(fresh.params, whole.params)


def test_resumed_schedules_and_validation_split_continue(rng):
    X, y = make_task(rng)
    kw = dict(batch_size=8, optimizer="adam", validation_split=0.2, random_state=1,
              backend="numpy", class_weight="balanced")
    for make in (lambda: CosineDecay(0.02, total_epochs=4, warmup_epochs=1),
                 lambda: ReduceOnPlateau(0.02, patience=1, factor=0.5, min_delta=1.0)):
        whole = nf.MLP([5, 8, 3], random_state=0)
        full = nf.train(whole, X, y, epochs=4, lr=make(), **kw)
        part = nf.MLP([5, 8, 3], random_state=0)
        state = None
        losses, rates = [], []
        for _ in range(4):
            hist = nf.train(part, X, y, epochs=1, lr=make(), state=state, **kw)
            state = hist.state
            losses += hist.loss
            rates += hist.lr
        np.testing.assert_array_equal(part.params, whole.params)
        assert losses == full.loss and rates == full.lr
        assert len(set(rates)) > 1  # the schedule did change the rate


def test_a_state_that_does_not_fit_is_refused(rng, tmp_path):
    X, y = make_task(rng)
    net = nf.MLP([5, 8, 3], random_state=0)
    hist = nf.train(net, X, y, epochs=1, optimizer="adam", backend="numpy")
    with pytest.raises(ValueError, match="optimizer='adam'"):
        nf.train(net, X, y, epochs=1, optimizer="sgd", state=hist.state)
    with pytest.raises(ValueError, match="belongs to a model of"):
        nf.train(nf.MLP([5, 4, 3]), X, y, optimizer="adam", state=hist.state)
    with pytest.raises(TypeError, match="state must be a ResumeState"):
        nf.train(net, X, y, state={"epoch": 1})
    path = tmp_path / "weights.npz"
    nf.save_checkpoint(path, net)
    with pytest.raises(ValueError, match="no training state"):
        nf.train(net, X, y, optimizer="adam", state=path)
    with pytest.raises(ValueError, match="not a model like"):
        nf.train(nf.MLP([5, 8, 8, 3]), X, y, optimizer="adam", state=path)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_checkpoint_keeps_metadata_and_arrays_and_refuses_other_files(tmp_path):
    net = nf.MLP([3, 4, 2], dtype=np.float64, random_state=0)
    path = tmp_path / "m.npz"
    nf.save_checkpoint(path, net, metadata={"classes": ["cat", "dog"], "inf": float("inf")},
                       arrays={"mean": np.array([1.0, 2.0, 3.0])})
    saved = nf.load_checkpoint(path)
    assert saved.metadata == {"classes": ["cat", "dog"], "inf": float("inf")}
    np.testing.assert_array_equal(saved.arrays["mean"], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(saved.net.params, net.params)
    assert saved.state is None and repr(saved.net) == repr(net)
    with pytest.raises(ValueError, match="numeric array"):
        nf.save_checkpoint(path, net, arrays={"names": np.array(["a"], dtype=object)})

    not_zip = tmp_path / "text.npz"
    not_zip.write_text("hello")
    estimator = tmp_path / "est.npz"
    nf.MLPClassifier(hidden_layer_sizes=(2,), max_iter=2).fit(
        np.eye(4), [0, 1, 0, 1]).save(estimator)
    for bad, match in ((not_zip, "corrupted or truncated"),
                       (estimator, "not an nnopt_fast checkpoint")):
        with pytest.raises(nf.ModelFileError, match=match):
            nf.load_checkpoint(bad)


def test_a_checkpoint_with_inconsistent_arrays_is_refused(tmp_path):
    net = nf.MLP([3, 4, 2], random_state=0)
    good = tmp_path / "good.npz"
    nf.save_checkpoint(good, net)
    with np.load(good) as f:
        members = {k: f[k] for k in f.files}
    meta = json.loads(members["__meta__"].tobytes())
    meta["model"]["layer_sizes"] = [3, 5, 2]
    members["__meta__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **members)
    with pytest.raises(nf.ModelFileError, match="params.npy has unexpected dtype or shape"):
        nf.load_checkpoint(bad)


INTERRUPTED_RUN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import nnopt_fast as nf

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60000, 64)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = nf.MLP([64, 256, 256, 2], random_state=0)
    ends = {}

    def epoch_end(epoch, net, history):
        ends[epoch] = net.params.copy()

    def epoch_begin(epoch, net, history):
        if epoch == 2:
            print("epoch 2 begins", flush=True)

    try:
        nf.train(net, X, y, epochs=1000, batch_size=32, lr=0.01, optimizer="adam",
                 dropout=0.1, backend=sys.argv[1], n_threads=1, random_state=0,
                 callbacks=[nf.LambdaCallback(on_epoch_begin=epoch_begin,
                                              on_epoch_end=epoch_end)])
    except nf.TrainingInterrupted as exc:
        hist = exc.history
        last = max(ends)
        print(json.dumps({
            "is_keyboard_interrupt": isinstance(exc, KeyboardInterrupt),
            "epochs": hist.epochs, "last_end": last, "state_epoch": hist.state.epoch,
            "finite": bool(np.isfinite(net.params).all()),
            "at_last_epoch_end": bool(np.array_equal(net.params, ends[last]))}))
""")


@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_ctrl_c_keeps_the_history_and_the_start_of_epoch_weights(backend):
    status, out, err = interrupt_when_ready([sys.executable, "-c", INTERRUPTED_RUN, backend],
                                            lambda line: line.strip() == "epoch 2 begins",
                                            stream="stdout")
    assert status == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["is_keyboard_interrupt"] and result["finite"]
    # Interrupted inside epoch 2 (or between epochs): the epochs recorded are the ones
    # that ended, and the weights are those of the last end, where the state resumes.
    assert result["epochs"] == result["last_end"] == result["state_epoch"] >= 1
    assert result["at_last_epoch_end"]


SIGINT_IN_EPOCH_END = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np
    import nnopt_fast as nf

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = nf.MLP([8, 16, 2], random_state=0)
    ends = {}

    def epoch_end(epoch, net, history):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C inside the epoch's bookkeeping
        ends[epoch] = net.params.copy()

    try:
        nf.train(net, X, y, epochs=50, batch_size=32, lr=0.01, optimizer="adam",
                 backend=sys.argv[1], n_threads=1, random_state=0,
                 callbacks=[nf.LambdaCallback(on_epoch_end=epoch_end)])
    except nf.TrainingInterrupted as exc:
        print(json.dumps({"epochs": exc.history.epochs, "last_end": max(ends),
                          "state_epoch": exc.history.state.epoch,
                          "at_last_epoch_end": bool(np.array_equal(net.params,
                                                                   ends[max(ends)]))}))
""")


@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_ctrl_c_during_an_epochs_bookkeeping_is_raised_once_the_epoch_is_recorded(backend):
    import subprocess

    done = subprocess.run([sys.executable, "-c", SIGINT_IN_EPOCH_END, backend],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # The epoch-end callback ran to its end, then the interrupt: epoch 2 is the last
    # recorded one, and the weights are its end's, where the state resumes.
    assert result == {"epochs": 2, "last_end": 2, "state_epoch": 2, "at_last_epoch_end": True}

"""nf.train_many: every model of a group ends exactly where nf.train takes it alone."""

import copy

import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast.kernels import backends, get_backend
from nnopt_fast.kernels.group import GroupJob, run_group_epoch
from nnopt_fast.kernels.team import new_stop_flag
from nnopt_fast.train.loop import make_config
from nnopt_fast.train.many import spread_threads
from nnopt_fast.train.state import TrainState
from nnopt_fast.train.threads import available_cores

AVAILABLE = [name for name, info in backends().items() if info["available"]]
K = 4


@pytest.fixture
def data(rng):
    X = rng.standard_normal((300, 8))
    y = np.argmax(X @ rng.standard_normal((8, 3)), axis=1)
    return X, y


def _nets(dtype=np.float64, layers=(8, 12, 3), n=K, **kw):
    return [nf.MLP(layers, dtype=dtype, random_state=k, **kw) for k in range(n)]


def _alone(k, nets, X, y, per_model, **common):
    """Model k trained by nf.train with its own entry of every per-model argument."""
    kw = {**common, **{name: values[k] for name, values in per_model.items()},
          "n_threads": 1}
    return nf.train(nets[k], X, y, **kw)


def _check_group(X, y, per_model, dtype=np.float64, layers=(8, 12, 3), **common):
    """train_many with ``per_model`` vectors equals K nf.train calls, bit for bit."""
    group, alone = _nets(dtype, layers), _nets(dtype, layers)
    hs = nf.train_many(group, X, y, **per_model, **common)
    for k in range(K):
        h = _alone(k, alone, X, y, per_model, **common)
        np.testing.assert_array_equal(group[k].params, alone[k].params)
        assert hs[k].loss == h.loss
        assert hs[k].lr == h.lr
    return hs


SEEDS = [11, 12, 13, 14]


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam"])
def test_every_optimizer_with_per_model_hyper_parameters(data, backend, optimizer):
    X, y = data
    per_model = dict(lr=[0.01, 0.05, 0.02, 0.1], l2=[0.0, 0.5, 2.0, 0.1],
                     momentum=[0.9, 0.5, 0.0, 0.8], beta1=[0.9, 0.8, 0.95, 0.5],
                     beta2=[0.999, 0.99, 0.9, 0.999], random_state=SEEDS)
    _check_group(X, y, per_model, epochs=3, batch_size=16, optimizer=optimizer,
                 backend=backend, n_threads=2)


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_per_model_and_per_layer(data, backend, dtype):
    X, y = data
    per_model = dict(dropout=[0.0, 0.3, (0.1, 0.4), (0.5, 0.0)], random_state=SEEDS,
                     lr=[0.05] * K)
    _check_group(X, y, per_model, dtype=dtype, layers=(8, 12, 10, 3), epochs=3,
                 batch_size=32, backend=backend, n_threads=2)


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("l1_method", ["proximal", "subgradient"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_l1_both_ways(data, backend, l1_method, optimizer):
    X, y = data
    per_model = dict(l1=[0.0, 1.0, 5.0, 20.0], l2=[0.0, 0.0, 1.0, 0.0], random_state=SEEDS)
    hs = _check_group(X, y, per_model, epochs=3, batch_size=20, lr=0.05,
                      l1_method=l1_method, optimizer=optimizer, backend=backend,
                      n_threads=2)
    assert len(hs) == K


@pytest.mark.parametrize("backend", AVAILABLE)
def test_bootstraps_as_counts_and_as_index_sets(data, backend, rng):
    X, y = data
    n = len(X)
    draws = [rng.integers(0, n, n) for _ in range(K)]
    counts = np.stack([np.bincount(d, minlength=n) for d in draws])
    group, alone = _nets(), _nets()
    nf.train_many(group, X, y, sample_weights=counts, random_state=SEEDS, epochs=2,
                  lr=0.05, backend=backend, n_threads=2)
    for k in range(K):
        nf.train(alone[k], X, y, sample_weight=counts[k], random_state=SEEDS[k], epochs=2,
                 lr=0.05, backend=backend, n_threads=1)
        np.testing.assert_array_equal(group[k].params, alone[k].params)
    group, alone = _nets(), _nets()
    nf.train_many(group, X, y, indices=draws, random_state=SEEDS, epochs=2, lr=0.05,
                  dropout=0.2, train_score=True, backend=backend, n_threads=2)
    for k in range(K):
        nf.train(alone[k], X[draws[k]], y[draws[k]], random_state=SEEDS[k], epochs=2,
                 lr=0.05, dropout=0.2, backend=backend, n_threads=1)
        np.testing.assert_array_equal(group[k].params, alone[k].params)


def test_index_sets_with_weights_and_validation_data(data, rng):
    X, y = data
    rows = [rng.permutation(len(X))[:200] for _ in range(K)]
    w = rng.integers(0, 3, len(X)).astype(float)
    w[:20] = 1.0
    group, alone = _nets(), _nets()
    hs = nf.train_many(group, X, y, indices=rows, sample_weights=w, X_val=X[:50],
                       y_val=y[:50], random_state=SEEDS, epochs=2, batch_size=50, lr=0.05)
    for k in range(K):
        h = nf.train(alone[k], X[rows[k]], y[rows[k]], sample_weight=w[rows[k]],
                     X_val=X[:50], y_val=y[:50], random_state=SEEDS[k], epochs=2,
                     batch_size=50, lr=0.05, n_threads=1)
        np.testing.assert_array_equal(group[k].params, alone[k].params)
        assert hs[k].val_loss == h.val_loss and hs[k].val_score == h.val_score


def test_one_seed_is_spawned_into_one_child_per_model(data):
    X, y = data
    group, alone = _nets(), _nets()
    nf.train_many(group, X, y, random_state=5, epochs=2, lr=0.05, dropout=0.2)
    children = np.random.SeedSequence(5).spawn(K)
    for k in range(K):
        nf.train(alone[k], X, y, random_state=children[k], epochs=2, lr=0.05, dropout=0.2,
                 n_threads=1)
        np.testing.assert_array_equal(group[k].params, alone[k].params)


def test_a_template_is_copied_and_left_alone(data):
    X, y = data
    template = nf.MLP((8, 12, 3), random_state=0)
    before = template.params.copy()
    hs = nf.train_many(template, X, y, n_models=3, random_state=[1, 2, 3], epochs=2)
    np.testing.assert_array_equal(template.params, before)
    assert len(hs) == len(hs.nets) == 3
    for k, net in enumerate(hs.nets):
        alone = template.copy()
        nf.train(alone, X, y, random_state=k + 1, epochs=2, n_threads=1)
        np.testing.assert_array_equal(net.params, alone.params)


def test_inputs_are_not_modified(data, rng):
    X, y = data
    Xf = np.asfortranarray(X.astype(np.float32))
    rows = [rng.integers(0, len(X), len(X)) for _ in range(K)]
    w = rng.random((K, len(X)))
    copies = [a.copy() for a in (Xf, y, w, *rows)]
    nf.train_many(_nets(np.float32), Xf, y, indices=rows, sample_weights=w, epochs=1,
                  random_state=SEEDS)
    for a, b in zip((Xf, y, w, *rows), copies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", [b for b in AVAILABLE if b != "numpy"])
def test_fewer_models_than_threads_give_the_leftover_threads_to_the_batches(data, backend):
    if available_cores() < 2:
        pytest.skip("needs 2 cores")
    X, y = data
    big = nf.MLP((8, 256, 3), random_state=0)
    alone = big.copy()
    kw = dict(epochs=2, batch_size=64, lr=0.05, dropout=0.1, backend=backend,
              thread_mode="data")
    nf.train_many([big], X, y, n_threads=2, random_state=[3], **kw)
    nf.train(alone, X, y, n_threads=2, random_state=3, **kw)
    np.testing.assert_array_equal(big.params, alone.params)
    assert spread_threads(2, 1) == [2] and spread_threads(5, 2) == [3, 2]
    assert spread_threads(2, 7) == [1] * 7


def test_threaded_members_run_their_own_teams(data):
    """Members asking for the threaded epoch (sync, deterministic for a thread count)
    run it on teams of their own, side by side, and end as alone."""
    X, y = data
    from nnopt_fast.train.group import Member, run_group
    from nnopt_fast.train.loop import EpochDriver

    be = get_backend("cython")
    Xc = np.ascontiguousarray(X.astype(np.float32))
    T = y.astype(np.int64)
    members, alone = [], []
    for k in range(2):
        for runs in (members, alone):
            net = nf.MLP((8, 64, 3), random_state=k)
            cfg = make_config(net, batch_size=64, n_samples=len(X), n_threads=2,
                              thread_mode="data", seed=k)
            state = TrainState(net, cfg)
            rng = np.random.default_rng(k)
            runs.append(Member(EpochDriver(cfg, state, len(X), epochs=2, lr=0.05, rng=rng),
                               Xc, T, None))
    assert run_group(be, members, 2) == [None, None]
    for m in alone:
        run_group(be, [m], 2)
    for a, b in zip(members, alone):
        np.testing.assert_array_equal(a.driver.state.params, b.driver.state.params)


def test_hogwild_models_one_thread_each_are_exact(data):
    X, y = data
    group, alone = _nets(), _nets()
    nf.train_many(group, X, y, parallel="hogwild", n_threads=2, random_state=SEEDS, epochs=2)
    for k in range(K):
        nf.train(alone[k], X, y, random_state=SEEDS[k], epochs=2, n_threads=1)
        np.testing.assert_array_equal(group[k].params, alone[k].params)


def test_a_hogwild_model_with_two_threads_learns_like_serial(data):
    if available_cores() < 2:
        pytest.skip("needs 2 cores")
    X, y = data
    X4 = np.tile(X, (20, 1))
    y4 = np.tile(y, 20)
    hog, serial = nf.MLP((8, 64, 3), random_state=0), nf.MLP((8, 64, 3), random_state=0)
    hs = nf.train_many([hog], X4, y4, parallel="hogwild", n_threads=2, thread_mode="data",
                       epochs=3, lr=0.05, random_state=1)
    h = nf.train(serial, X4, y4, n_threads=1, epochs=3, lr=0.05, random_state=1)
    # Nondeterministic by design: the same learning, not the same bits.
    assert hs[0].loss[-1] < 0.7 * hs[0].loss[0]
    assert abs(hs[0].loss[-1] - h.loss[-1]) < 0.25 * h.loss[-1]


def test_a_diverging_model_stops_alone(data):
    X, y = data
    y = X[:, :2] * 10
    group, alone = _nets(layers=(8, 12, 2), output="identity"), \
        _nets(layers=(8, 12, 2), output="identity")
    lrs = [0.001, 50.0, 0.001, 0.002]
    with pytest.raises(nf.DivergenceError) as info:
        nf.train_many(group, X, y, lr=lrs, random_state=SEEDS, epochs=10)
    err = info.value
    assert err.model == 1 and str(err).startswith("model 1: training diverged")
    assert len(err.histories) == K and err.history is err.histories[1]
    for k in range(K):
        try:
            nf.train(alone[k], X, y, lr=lrs[k], random_state=SEEDS[k], epochs=10,
                     n_threads=1)
        except nf.DivergenceError as e:
            assert k == 1 and e.epoch == err.epoch
        np.testing.assert_array_equal(group[k].params, alone[k].params)


def test_a_zero_weight_batch_stops_its_model_with_nf_trains_error(data):
    X, y = data
    w = np.ones((K, len(X)))
    w[2] = 0.0
    with pytest.raises(ValueError, match="model 2: sample_weight: in epoch 1"):
        nf.train_many(_nets(), X, y, sample_weights=w, random_state=SEEDS, epochs=1,
                      shuffle=False)


def test_callbacks_are_copied_per_model(data):
    X, y = data
    stop = nf.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
    hs = nf.train_many(_nets(), X, y, random_state=SEEDS, epochs=5, callbacks=[stop])
    assert [h.epochs for h in hs] == [2] * K  # each copy stopped its own model
    assert stop.best_epoch is None  # the list given was copied, never run
    seen = [[] for _ in range(K)]
    cbs = [[lambda net, hist, k=k: seen[k].append(hist.epochs)] for k in range(K)]
    nf.train_many(_nets(), X, y, random_state=SEEDS, epochs=2, callbacks=cbs)
    assert seen == [[1, 2]] * K


def test_bad_arguments_name_themselves(data):
    X, y = data
    with pytest.raises(ValueError, match="nets gives 4 models but lr gives 2"):
        nf.train_many(_nets(), X, y, lr=[0.1, 0.2])
    with pytest.raises(ValueError, match="n_models gives 2 models but l2 gives 1"):
        nf.train_many(nf.MLP((8, 12, 3)), X, y, n_models=2, l2=np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="nets gives 4 models but indices gives 2"):
        nf.train_many(_nets(), X, y, indices=[[0, 1], [2, 3]])
    with pytest.raises(ValueError, match=r"nets\[1\] is MLP"):
        nf.train_many([nf.MLP((8, 12, 3)), nf.MLP((8, 5, 3))], X, y)
    with pytest.raises(TypeError, match=r"nets\[0\] must be an nnopt_fast.MLP"):
        nf.train_many(["net"], X, y)
    with pytest.raises(ValueError, match=r"indices\[0\] must hold rows of X"):
        nf.train_many(_nets(n=1), X, y, indices=[[0, 300]])
    with pytest.raises(ValueError, match="sample_weights must have shape"):
        nf.train_many(_nets(), X, y, sample_weights=np.ones((K, len(X) - 1)))
    with pytest.raises(ValueError, match="how many models"):
        nf.train_many(nf.MLP((8, 12, 3)), X, y)
    with pytest.raises(ValueError, match="epochs"):
        nf.train_many(_nets(), X, y, epochs=0)


@pytest.mark.parametrize("backend", AVAILABLE)
@pytest.mark.parametrize("layers, batch", [((24, 8, 2), 64), ((8, 12, 3), 16)])
def test_group_epoch_equals_run_epoch_in_both_layouts(rng, backend, layers, batch):
    """The kernel: one group call equals one run_epoch per model (narrow networks run
    the feature-major layout, the others the row-major one), a mix of dtypes too."""
    be = get_backend(backend)
    n = 200
    X = rng.standard_normal((n, layers[0]))
    y = rng.integers(0, layers[-1], n)
    jobs, twins = [], []
    for k, dt in enumerate([np.float32, np.float64, np.float32]):
        for runs in (jobs, twins):
            net = nf.MLP(layers, dtype=dt, random_state=k)
            cfg = make_config(net, batch_size=batch, n_samples=n, dropout=0.2, seed=k,
                              l2=0.5)
            Xk = np.ascontiguousarray(X, dtype=dt)
            perm = np.random.default_rng(k).permutation(n)
            runs.append(GroupJob(cfg, TrainState(net, cfg), Xk, y, None, perm, 0.05, 7))
    outcomes = run_group_epoch(be, jobs, new_stop_flag())
    for job, twin, out in zip(jobs, twins, outcomes):
        ref = be.run_epoch(twin.cfg, twin.state, twin.X, twin.T, None, twin.perm, 0.05, 7)
        assert tuple(out[:4]) == tuple(ref) and out[4] >= 0
        np.testing.assert_array_equal(job.state.params, twin.state.params)


def test_group_epoch_stop_flag_and_bad_arguments(rng):
    be = get_backend("cython")
    net = nf.MLP((4, 5, 2), random_state=0)
    cfg = make_config(net, batch_size=8, n_samples=40)
    X = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 2, 40)
    job = GroupJob(cfg, TrainState(net, cfg), X, y, None, np.arange(40), 0.1, 0)
    stop = new_stop_flag()
    stop[0] = 1
    before = net.params.copy()
    assert run_group_epoch(be, [job, job], stop)[1][3] == 3  # interrupted, not started
    np.testing.assert_array_equal(net.params, before)
    with pytest.raises(TypeError, match="run_epoch: X must be float32"):
        run_group_epoch(be, [job._replace(X=X.astype(np.float64))], new_stop_flag())
    with pytest.raises(ValueError, match="perm must index rows"):
        run_group_epoch(be, [job._replace(perm=np.array([40]))], new_stop_flag())
    bad = copy.copy(job)
    assert run_group_epoch(be, [bad._replace(sw=np.zeros(40, np.float32))],
                           new_stop_flag())[0].args[0].startswith("batch 0 of the epoch")

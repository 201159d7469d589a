"""Numba backend: fast tanh accuracy, whole-epoch parity with the reference, safe caching."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast.kernels import _numba_config, get_backend
from nnopt_fast.kernels import reference as ref
from nnopt_fast.kernels.numba.scalar import fast_exp
from nnopt_fast.train.loop import make_config
from nnopt_fast.train.state import TrainState
from tolerances import ACTIVATION_ATOL, TRAIN_LOSS_RTOL, TRAIN_WEIGHT_RTOL

nb = get_backend("numba")


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


# ---------------------------------------------------------------------------
# tanh
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_accuracy_through_dense_forward(dtype):
    # Every float32 step of 1.2e-5 over [-12, 12] (past the clamp at 9) plus the edges;
    # through dense_forward with W = 1, b = 0 so the compiled loop itself is tested.
    x = np.concatenate([np.linspace(-12, 12, 2_000_001),
                        [0.0, -0.0, 1e-30, -1e-30, 8.999, 9.0, 9.001, -9.0, 30.0, -30.0,
                         1e30, -1e30, np.inf, -np.inf]]).astype(dtype)
    out = np.empty((x.size, 1), dtype=dtype)
    nb.dense_forward(x[:, None], np.ones((1, 1), dtype), np.zeros(1, dtype), "tanh", out)
    want = np.tanh(x)
    err = np.abs(out[:, 0].astype(np.float64) - want.astype(np.float64))
    assert out.dtype == dtype
    assert err.max() <= ACTIVATION_ATOL[np.dtype(dtype)], f"max abs error {err.max():.3g}"
    assert np.abs(out).max() <= 1.0
    np.testing.assert_array_equal(out[:, 0] == 0, x == 0)


def test_tanh_propagates_nan():
    for dtype in (np.float32, np.float64):
        out = np.empty((2, 1), dtype=dtype)
        x = np.array([[np.nan], [1.0]], dtype=dtype)
        nb.dense_forward(x, np.ones((1, 1), dtype), np.zeros(1, dtype), "tanh", out)
        assert np.isnan(out[0, 0]) and out[1, 0] == pytest.approx(np.tanh(1.0), abs=1e-6)


# ---------------------------------------------------------------------------
# exp of the losses (no libm call, so that its loops vectorize)
# ---------------------------------------------------------------------------
@numba.njit
def _exps(x32, x64):
    e32 = np.empty_like(x32)
    e64 = np.empty_like(x64)
    for i in range(x32.shape[0]):
        e32[i] = fast_exp(x32[i])
    for i in range(x64.shape[0]):
        e64[i] = fast_exp(x64[i])
    return e32, e64


def test_fast_exp_accuracy_and_edges():
    x32 = np.concatenate([np.linspace(-87, 88, 1_000_001, dtype=np.float32),
                          np.array([0.0, -0.0, -87.5, -200.0, 88.5, 1e30, -np.inf, np.inf,
                                    np.nan], np.float32)])
    x64 = np.concatenate([np.linspace(-745, 700, 100_001), [710.0, 1e300, np.nan]])
    e32, e64 = _exps(x32, x64)
    body = np.isfinite(x32) & (x32 >= -87) & (x32 <= 88)
    want = np.exp(x32[body].astype(np.float64))
    rel = np.abs(e32[body] - want) / want
    assert rel.max() <= 4 * np.finfo(np.float32).eps, f"exp max rel error {rel.max():.3g}"
    assert e32[x32 == 0].tolist() == [1.0, 1.0]
    # Below -87: 0; above 88: inf; NaN propagates.
    assert np.all(e32[(x32 < -87)] == 0) and np.all(np.isposinf(e32[x32 > 88]))
    assert np.isnan(e32[-1])
    # float64: libm's exp (NumPy's own may differ by an ulp).
    np.testing.assert_allclose(e64[:-3], np.exp(x64[:-3]), rtol=4 * np.finfo(np.float64).eps)
    assert np.all(np.isposinf(e64[-3:-1])) and np.isnan(e64[-1])


# ---------------------------------------------------------------------------
# compiled inference (its parity with the reference: tests/test_model.py)
# ---------------------------------------------------------------------------
def test_compiled_inference_rejects_nan_rows_anywhere(rng):
    from nnopt_fast.kernels.inference import Network

    net = nf.MLP([3, 4, 2], random_state=0)
    compiled = Network(net.coefs_, net.intercepts_, "tanh", "softmax", backend="numba")
    X = rng.normal(size=(600, 3)).astype(np.float32)
    assert compiled(X).shape == (600, 2) and compiled(X[:0]).shape == (0, 2)
    # A call large enough for the threaded rules of inference runs the same pass.
    big = rng.normal(size=(300_000, 3)).astype(np.float32)
    np.testing.assert_array_equal(compiled(big)[:600], compiled(big[:600]))
    for bad in (np.nan, np.inf, -np.inf):
        X[517, 1] = bad  # in the third block
        with pytest.raises(ValueError, match="NaN or infinity"):
            compiled(X)


# ---------------------------------------------------------------------------
# dropout masks: bit-identical to the reference's counter hash
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed, layer, step, row0, keep", [
    (0, 1, 0, 0, 0.8), (2**63 - 1, 2, 10**9, 12345, 0.5), (2**64 - 1, 3, 7, 3, 0.999)])
def test_dropout_mask_is_bit_identical(seed, layer, step, row0, keep):
    want = ref.dropout_mask(seed, layer, step, row0, keep, np.empty((33, 17)))
    got = nb.dropout_mask(seed, layer, step, row0, keep, np.full((33, 17), np.nan))
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# whole epochs against the reference
# ---------------------------------------------------------------------------
def _problem(rng, sizes, output, dtype, n=41):
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    if output == "softmax":
        T = rng.integers(0, sizes[-1], n).astype(np.int64)
    elif output == "logistic":
        T = (rng.random((n, sizes[-1])) < 0.4).astype(dtype)
    else:
        T = rng.standard_normal((n, sizes[-1])).astype(dtype)
    sw = rng.uniform(0.0, 2.0, n).astype(dtype)
    sw[::5] = 0.0  # zero weights must drop a sample exactly
    return X, T, sw


def _train(backend, X, T, sw, sizes, case, dtype, epochs=3, lr=0.05):
    act, out, opt, B, dropout, l2, l1, l1_method, pdiv = case
    net = nf.MLP(sizes, activation=act, output=out, dtype=dtype, random_state=3)
    cfg = make_config(net, batch_size=B, n_samples=len(X), optimizer=opt, l2=l2, l1=l1,
                      l1_method=l1_method, dropout=dropout, seed=2**62 + 11, penalty_div=pdiv)
    state = TrainState(net, cfg)
    order = np.random.default_rng(5)
    losses = []
    for _ in range(epochs):
        perm = order.permutation(len(X)).astype(np.int64)
        data, pen, n_steps, status = backend.run_epoch(cfg, state, X, T, sw, perm, lr,
                                                       state.step)
        assert status == 0
        state.step += n_steps
        state.t += n_steps
        losses.append((data + pen) / len(X))
    return net.params.copy(), np.array(losses), state


# (activation, output, optimizer, batch, dropout, l2, l1, l1_method, penalty_div).
# Settings where training is not chaotic: batch-1 momentum with large per-batch L1 makes
# even the reference against itself (one ulp of tanh changed) differ by 1e-2 in float32.
EPOCH_CASES = {
    "tanh-softmax-sgd-l2-dropout-b7": ("tanh", "softmax", "sgd", 7, 0.2, 0.5, 0.0,
                                       "subgradient", None),
    "relu-logistic-adam-prox-full": ("relu", "logistic", "adam", None, 0.0, 0.0, 0.3,
                                     "proximal", None),
    "logistic-identity-nesterov-l2-b1-perbatch": ("logistic", "identity", "nesterov", 1, 0.0,
                                                  0.2, 0.0, "subgradient", 0.0),
    "identity-softmax-momentum-l1sub-dropout-b7-perbatch": ("identity", "softmax", "momentum",
                                                            7, 0.3, 0.0, 0.2, "subgradient",
                                                            0.0),
    "tanh-logistic-adam-l2-l1sub-dropout-b7": ("tanh", "logistic", "adam", 7, 0.5, 0.3, 0.1,
                                               "subgradient", None),
}


@pytest.mark.parametrize("with_sw", [False, True], ids=["no-sw", "sw"])
@pytest.mark.parametrize("name", list(EPOCH_CASES))
def test_three_epochs_match_reference_float64(rng, name, with_sw):
    sizes = (5, 6, 4, 3)
    case = EPOCH_CASES[name]
    X, T, sw = _problem(rng, sizes, case[1], np.float64)
    if case[3] == 1:
        sw[sw == 0] = 0.5  # a batch of one zero-weight sample raises (tested below)
    sw = sw if with_sw else None
    w_ref, l_ref, _ = _train(ref, X, T, sw, sizes, case, np.float64)
    w_nb, l_nb, _ = _train(nb, X, T, sw, sizes, case, np.float64)
    tol = TRAIN_WEIGHT_RTOL[np.dtype(np.float64)]
    assert np.abs(w_nb - w_ref).max() <= tol * np.abs(w_ref).max()
    np.testing.assert_allclose(l_nb, l_ref, rtol=TRAIN_LOSS_RTOL[np.dtype(np.float64)])
    # Training moved the weights, so the comparison is not of two untouched inits.
    w0 = nf.MLP(sizes, activation=case[0], output=case[1], dtype=np.float64,
                random_state=3).params
    assert np.abs(w_ref - w0).max() > 1e-3


@pytest.mark.parametrize("sizes, dropout", [((5, 3), 0.0), ((5, 6, 4, 3), (0.3, 0.0)),
                                           ((5, 6, 4, 3), (0.0, 0.5))],
                         ids=["no-hidden-layer", "dropout-first-only", "dropout-second-only"])
def test_layouts_match_reference(rng, sizes, dropout):
    # The flat workspace's per-layer offsets: no hidden layer at all, and dropout on one
    # hidden layer but not the other (its A and M blocks are then not used).
    case = ("tanh", "softmax", "adam", 7, dropout, 0.1, 0.1, "proximal", None)
    X, T, sw = _problem(rng, sizes, "softmax", np.float64)
    w_ref, l_ref, _ = _train(ref, X, T, sw, sizes, case, np.float64)
    w_nb, l_nb, _ = _train(nb, X, T, sw, sizes, case, np.float64)
    tol = TRAIN_WEIGHT_RTOL[np.dtype(np.float64)]
    assert np.abs(w_nb - w_ref).max() <= tol * np.abs(w_ref).max()
    np.testing.assert_allclose(l_nb, l_ref, rtol=TRAIN_LOSS_RTOL[np.dtype(np.float64)])


def test_three_epochs_match_reference_float32(rng):
    sizes = (5, 6, 4, 3)
    case = EPOCH_CASES["tanh-softmax-sgd-l2-dropout-b7"]
    X, T, sw = _problem(rng, sizes, case[1], np.float32)
    w_ref, l_ref, _ = _train(ref, X, T, sw, sizes, case, np.float32)
    w_nb, l_nb, st = _train(nb, X, T, sw, sizes, case, np.float32)
    tol = TRAIN_WEIGHT_RTOL[np.dtype(np.float32)]
    assert w_nb.dtype == np.float32
    assert np.abs(w_nb - w_ref).max() <= tol * np.abs(w_ref).max()
    np.testing.assert_allclose(l_nb, l_ref, rtol=TRAIN_LOSS_RTOL[np.dtype(np.float32)])


def test_zero_weight_batch_raises_like_the_reference(rng):
    sizes = (5, 6, 4, 3)
    case = EPOCH_CASES["logistic-identity-nesterov-l2-b1-perbatch"]
    X, T, sw = _problem(rng, sizes, case[1], np.float64)
    for be in (ref, nb):
        with pytest.raises(ZeroDivisionError):
            _train(be, X, T, sw, sizes, case, np.float64, epochs=1)


def test_divergence_stops_before_the_update(rng):
    # A huge learning rate on a linear network: the loss overflows after a few steps.
    sizes = (4, 5, 2)
    X = rng.standard_normal((30, 4)) * 10
    T = rng.standard_normal((30, 2))
    results = []
    for be in (ref, nb):
        net = nf.MLP(sizes, activation="identity", output="identity", dtype=np.float64,
                     random_state=0)
        cfg = make_config(net, batch_size=3, n_samples=30)
        st = TrainState(net, cfg)
        with np.errstate(all="ignore"):
            out = be.run_epoch(cfg, st, X, T, None, np.arange(30), 50.0, 0)
        results.append((out, net.params.copy()))
    (d_ref, _, n_ref, s_ref), p_ref = results[0]
    (d_nb, _, n_nb, s_nb), p_nb = results[1]
    assert s_ref == 1 and s_nb == 1
    assert n_nb == n_ref and 0 < n_ref < 10
    # The failing batch applied nothing: both stop with the same finite-or-not weights.
    np.testing.assert_array_equal(np.isfinite(p_nb), np.isfinite(p_ref))
    fin = np.isfinite(p_ref)
    np.testing.assert_allclose(p_nb[fin], p_ref[fin], rtol=1e-10)


def test_workspace_is_allocated_once(rng):
    sizes = (5, 6, 4, 3)
    case = EPOCH_CASES["tanh-softmax-sgd-l2-dropout-b7"]
    X, T, _ = _problem(rng, sizes, case[1], np.float64)
    _, _, state = _train(nb, X, T, None, sizes, case, np.float64, epochs=1)
    ws = state.workspace["numba"]
    plan = state.workspace["plan"][1]
    # The plan's one flat workspace, each block on a 64-byte boundary.
    assert ws.work.size >= plan.work_size and ws.work.dtype == np.float64
    assert ws.work.ctypes.data % 64 == 0
    ptr = ws.work.ctypes.data
    cfg = make_config(state.net, batch_size=7, n_samples=len(X), l2=0.5, dropout=0.2,
                      seed=2**62 + 11)
    nb.run_epoch(cfg, state, X, T, None, np.arange(len(X)), 0.05, state.step)
    assert state.workspace["numba"] is ws
    assert ws.work.ctypes.data == ptr


def test_epoch_allocates_nothing_per_batch(rng):
    # Numba's runtime counts every allocation of compiled code (including the array
    # structs it makes when unboxing arguments, a fixed number per call): an epoch of 43
    # batches must allocate exactly as much as an epoch of one batch.
    from numba.core.runtime import _nrt_python, rtsys

    X = rng.standard_normal((300, 5))
    y = rng.integers(0, 3, 300)

    def allocs(batch_size):
        net = nf.MLP((5, 6, 4, 3), dtype=np.float64, random_state=0)
        cfg = make_config(net, batch_size=batch_size, n_samples=300, l2=0.1, l1=0.05,
                          dropout=0.2, optimizer="adam")
        st = TrainState(net, cfg)
        nb.run_epoch(cfg, st, X, y, None, np.arange(300), 0.01, 0)  # compile, workspace
        before = rtsys.get_allocation_stats().alloc
        nb.run_epoch(cfg, st, X, y, None, np.arange(300), 0.01, st.step)
        return rtsys.get_allocation_stats().alloc - before

    was_on = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        many, one = allocs(7), allocs(300)
    finally:
        if not was_on:
            _nrt_python.memsys_disable_stats()
    assert many == one


def test_nf_train_uses_numba_backend(rng):
    X = rng.standard_normal((40, 5))
    y = rng.integers(0, 3, 40)
    a = nf.MLP((5, 6, 3), dtype=np.float64, random_state=0)
    b = a.copy()
    ha = nf.train(a, X, y, epochs=2, batch_size=8, l2=0.1, dropout=0.2, random_state=1,
                  backend="numba")
    nf.train(b, X, y, epochs=2, batch_size=8, l2=0.1, dropout=0.2, random_state=1,
             backend="numpy")
    assert ha.backend == "numba"
    np.testing.assert_allclose(a.params, b.params, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------
# backend_info and the on-disk cache
# ---------------------------------------------------------------------------
def test_backend_info():
    info = nf.backends()["numba"]
    assert info["available"] and info["reason"] is None
    assert info["numba"] == numba.__version__
    assert isinstance(info["cache"], bool)
    if info["cache"]:
        assert os.path.isdir(info["cache_dir"])
    assert not {"nnan", "ninf", "fast"} & set(info["fastmath"])


def _blocked(tmp_path):
    """A regular file: any directory "under" it can neither exist nor be created."""
    f = tmp_path / "blocker"
    f.write_text("not a directory")
    return f


def test_choose_cache_dir_falls_back_then_gives_up(tmp_path, monkeypatch):
    blocker = _blocked(tmp_path)
    src = tmp_path / "ro_pkg"
    src.mkdir()
    (src / "__pycache__").write_text("a file where the cache directory would go")
    module = str(src / "mod.py")
    monkeypatch.setenv("HOME", str(blocker / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "xdg"))
    env = {"NUMBA_CACHE_DIR": str(blocker / "numba"), "XDG_CACHE_HOME": str(blocker / "xdg")}
    tmp = tmp_path / "tmp"
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    on, where, source = _numba_config.choose_cache_dir(module, env)
    assert (on, source) == (True, "fallback")
    assert Path(where).parent == tmp and Path(where).is_dir()

    monkeypatch.setattr(tempfile, "tempdir", str(blocker / "tmp"))
    on, where, source = _numba_config.choose_cache_dir(module, env)
    assert (on, where) == (False, None) and "no writable" in source

    writable = tmp_path / "numba_cache"
    on, where, source = _numba_config.choose_cache_dir(module, {"NUMBA_CACHE_DIR": str(writable)})
    assert (on, where, source) == (True, str(writable), "NUMBA_CACHE_DIR")
    on, _, source = _numba_config.choose_cache_dir(module, {"NNOPT_FAST_NUMBA_CACHE": "0"})
    assert not on and "disabled" in source


def _run_python(code, env=None, cwd=None, timeout=600):
    """Run ``code`` in a fresh interpreter; its last stdout line parsed as JSON."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_and_train_with_unwritable_cache_dirs(tmp_path):
    # A copy of the package whose __pycache__ directories cannot be created (a file is in
    # the way), with NUMBA_CACHE_DIR, HOME and XDG_CACHE_HOME unusable the same way:
    # Numba's cache=True alone would fail at import. Root ignores permission bits, hence
    # files. The threaded epochs (sync and Hogwild) are compiled and cached there too.
    pkg_root = tmp_path / "site"
    src = Path(nf.__file__).parent
    shutil.copytree(src, pkg_root / "nnopt_fast", ignore=shutil.ignore_patterns("__pycache__"))
    for kernels in (pkg_root / "nnopt_fast" / "kernels", pkg_root / "nnopt_fast" / "kernels"
                    / "numba"):
        (kernels / "__pycache__").write_text("blocked")
    blocker = _blocked(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(pkg_root), NUMBA_CACHE_DIR=str(blocker / "numba"),
               HOME=str(blocker / "home"), XDG_CACHE_HOME=str(blocker / "xdg"), TMPDIR=str(tmp),
               PYTHONDONTWRITEBYTECODE="1")
    env.pop(_numba_config.CACHE_ENV, None)
    code = """
        import json
        import numpy as np
        import nnopt_fast as nf
        rng = np.random.default_rng(0)
        X = rng.standard_normal((20, 3))
        y = rng.integers(0, 2, 20)
        losses = []
        for n_threads, parallel in ((1, "sync"), (2, "sync"), (2, "hogwild")):
            net = nf.MLP((3, 4, 2), dtype=np.float64, random_state=0)
            h = nf.train(net, X, y, epochs=1, batch_size=5, backend="numba", random_state=0,
                         n_threads=n_threads, parallel=parallel, thread_mode="data")
            losses.append(h.loss[0])
        info = nf.backends()["numba"]
        print(json.dumps({"file": nf.__file__, "loss": losses, "backend": h.backend,
                          "cache": info["cache"], "cache_dir": info["cache_dir"],
                          "source": info["cache_source"]}))
    """
    res = _run_python(code, env=env, cwd=tmp_path)
    assert res["file"].startswith(str(pkg_root))
    assert res["backend"] == "numba" and np.isfinite(res["loss"]).all()
    assert res["cache"] and res["source"] == "fallback"
    assert res["cache_dir"].startswith(str(tmp))
    cached = {p.name.split("-")[0] for p in Path(res["cache_dir"]).rglob("*.nbi")}
    assert {"workers.serial_loop", "workers.sync_worker", "workers.hogwild_worker"} <= cached


def sync_epochs(be, X, y):
    """Final weights of two 2-thread sync epochs through ``be.run_epoch``."""
    net = nf.MLP((5, 7, 3), dtype=np.float64, random_state=0)
    cfg = make_config(net, batch_size=16, n_samples=len(X), l2=0.1, dropout=0.2, seed=4,
                      optimizer="adam", n_threads=2, parallel="sync", thread_mode="data")
    state = TrainState(net, cfg)
    for epoch in range(2):
        perm = np.random.default_rng(epoch).permutation(len(X)).astype(np.int64)
        _, _, n_steps, status = be.run_epoch(cfg, state, X, y, None, perm, 0.05, state.step)
        assert status == 0
        state.step += n_steps
        state.t += n_steps
    return net.params


def test_numba_only_install_runs_the_threaded_epoch(rng):
    # Without the compiled extension (hidden before nnopt_fast is imported), the Numba
    # backend runs its threaded sync epoch itself, with the weights it gives beside the
    # extension, and without starting a Numba threading layer.
    X = rng.standard_normal((90, 5))
    y = rng.integers(0, 3, 90)
    want = sync_epochs(nb, X, y)
    code = f"""
        import json, sys
        sys.modules["nnopt_fast.kernels._cython"] = None
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import numpy as np
        import nnopt_fast as nf
        from numba.np.ufunc import parallel
        from test_numba_backend import nb, sync_epochs
        X = np.array({X.tolist()!r})
        y = np.array({y.tolist()!r})
        params = sync_epochs(nb, X, y)
        print(json.dumps({{"params": params.tolist(),
                          "cython": nf.backends()["cython"]["available"],
                          "threading_layer_started": parallel._is_initialized}}))
    """
    env = dict(os.environ, PYTHONPATH=str(Path(nf.__file__).parent.parent))
    res = _run_python(code, env=env)
    assert res["cython"] is False
    assert res["threading_layer_started"] is False
    np.testing.assert_array_equal(np.array(res["params"]), want)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_run_epoch_rejects_x_of_another_dtype(n_threads):
    import dataclasses

    net = nf.MLP((4, 5, 3), random_state=0, dtype=np.float32)
    cfg = dataclasses.replace(make_config(net, batch_size=8, n_samples=16),
                              n_threads=n_threads)
    state = TrainState(net, cfg)
    X = np.zeros((16, 4))                       # float64 for a float32 model
    with pytest.raises(TypeError, match="run_epoch: X must be float32, got float64"):
        nb.run_epoch(cfg, state, X, np.zeros(16, np.int64), None,
                     np.arange(16, dtype=np.int64), 0.1, 0)

"""Model files that try to do harm: each is refused with a ModelFileError, cheaply."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import nnopt_fast as nf
from nnopt_fast import MLPClassifier, MLPRegressor
from nnopt_fast._serialization._files import _host_tag

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

MiB = 1 << 20


@pytest.fixture
def model(rng, tmp_path):
    X = rng.normal(size=(60, 4))
    clf = MLPClassifier(hidden_layer_sizes=(7,), max_iter=5, batch_size=16, random_state=0)
    clf.fit(X, np.array(["a", "b", "c"])[rng.integers(0, 3, 60)])
    path = tmp_path / "model.npz"
    clf.save(path)
    return path, clf, X


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def _meta(members):
    return json.loads(np.load(_npy_file(members["__meta__.npy"])).tobytes())


def _npy_file(raw):
    import io

    return io.BytesIO(raw)


def _npy(array):
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _write(path, members, big=None):
    """Write a zip of ``members`` (name -> bytes), plus ``big = (name, header, n_zero_bytes)``
    streamed as a deflated member without ever holding it in memory."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, raw in members.items():
            z.writestr(name, raw)
        if big is not None:
            name, header, n_zero = big
            chunk = bytes(MiB)
            with z.open(name, "w", force_zip64=True) as f:
                f.write(header)
                for _ in range(n_zero // MiB):
                    f.write(chunk)
    return path


def _with_meta(members, change):
    meta = _meta(members)
    change(meta)
    return {**members, "__meta__.npy": _npy(np.frombuffer(json.dumps(meta).encode(),
                                                          dtype=np.uint8))}


def _peak_while(fn):
    """Peak traced memory (bytes) while ``fn()`` runs (it must raise ModelFileError)."""
    tracemalloc.start()
    try:
        with pytest.raises(nf.ModelFileError) as info:
            fn()
        return tracemalloc.get_traced_memory()[1], str(info.value)
    finally:
        tracemalloc.stop()


def _npy_header(shape, dtype=np.float64):
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.dtype(dtype).str,
                                               "fortran_order": False, "shape": shape})
    return buf.getvalue()


# ---------------------------------------------------------------- sizes before decompression
def test_a_member_that_does_not_belong_is_refused_before_it_is_decompressed(model, tmp_path):
    path, _, _ = model
    # A 1 GiB zero .npy member compresses to about 1 MiB.
    bomb = _write(tmp_path / "bomb.npz", _members(path),
                  big=("junk.npy", _npy_header((1 << 27,)), 1 << 30))
    assert os.path.getsize(bomb) < 3 * MiB
    peak, msg = _peak_while(lambda: nf.load(bomb))
    assert "unexpected members ['junk.npy']" in msg
    assert peak < 4 * MiB
    other = _write(tmp_path / "other.npz", {**_members(path), "payload.bin": b"\0" * 100})
    with pytest.raises(nf.ModelFileError, match=r"unexpected members \['payload.bin'\]"):
        nf.load(other)


def test_a_member_larger_than_its_header_is_refused_before_it_is_read(model, tmp_path):
    path, clf, _ = model
    members = _members(path)
    # The header of the real coef_0 (4 x 7), followed by 256 MiB of zeros.
    header = members["coef_0.npy"][: members["coef_0.npy"].index(b"\n") + 1]
    del members["coef_0.npy"]
    bomb = _write(tmp_path / "bomb.npz", members, big=("coef_0.npy", header, 256 * MiB))
    peak, msg = _peak_while(lambda: nf.load(bomb))
    assert "declares" in msg and "header describes" in msg
    assert peak < 4 * MiB


def test_a_header_the_metadata_does_not_allow_is_refused_before_allocating(model, tmp_path):
    path, _, _ = model
    members = _members(path)
    del members["coef_0.npy"]
    bomb = _write(tmp_path / "bomb.npz", members,
                  big=("coef_0.npy", _npy_header((1 << 25,)), 256 * MiB))
    peak, msg = _peak_while(lambda: nf.load(bomb))
    assert "coef_0.npy has unexpected shape or dtype" in msg
    assert peak < 4 * MiB


def test_memory_of_a_load_stays_within_twice_the_arrays(rng, tmp_path):
    X = rng.normal(size=(30, 400))
    clf = MLPClassifier(hidden_layer_sizes=(800,), max_iter=1, random_state=0)
    clf.fit(X, np.arange(30) % 3)  # adam: weights, best weights, two moments
    clf.save(tmp_path / "big.npz")
    arrays = sum(a.nbytes for a in np.load(tmp_path / "big.npz").values())
    assert arrays > 8 * MiB
    tracemalloc.start()
    try:
        back = nf.load(tmp_path / "big.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * arrays
    np.testing.assert_array_equal(back.coefs_[0], clf.coefs_[0])


# ---------------------------------------------------------------- metadata
@pytest.mark.parametrize("where", ["whole", "inside"])
def test_deeply_nested_json_metadata(model, tmp_path, where):
    path, _, _ = model
    members = _members(path)
    if where == "whole":
        raw = b"[" * 200_000 + b"]" * 200_000
    else:
        text = json.dumps(_meta(members))
        raw = text.replace('"loss_curve_": [', '"loss_curve_": ' + "[" * 200_000, 1)
        raw = (raw[:-1] + "]" * 200_000 + "}").encode()
    members["__meta__.npy"] = _npy(np.frombuffer(raw, dtype=np.uint8))
    with pytest.raises(nf.ModelFileError, match="unreadable metadata: RecursionError"):
        nf.load(_write(tmp_path / "nested.npz", members))


@pytest.mark.parametrize(("section", "name", "value", "match"), [
    ("attributes", "predict_proba", "x", "unknown attributes entry 'predict_proba'"),
    ("attributes", "out_activation_", "identity", "out_activation_ is 'identity'"),
    ("attributes", "n_iter_", "many", "n_iter_ must be an integer"),
    ("attributes", "loss_curve_", ["a"], "each entry of loss_curve_ must be a number"),
    ("attributes", "backend_", "os", "backend_ must name a backend"),
    ("training_state", "_dropout_step", -3, "_dropout_step must be an integer >= 0"),
    ("training_state", "__class__", "x", "unknown training_state entry"),
    ("params", "activation", "os.system", "invalid parameter"),
    ("params", "shell", "rm", "unknown attribute"),
    ("optimizer", "kind", "sgd2", "_optimizer.kind must be one of"),
    ("optimizer", "learning_rate", float("inf"), "learning_rate must be a finite number"),
])
def test_every_attribute_is_allow_listed_and_checked(model, tmp_path, section, name, value,
                                                      match):
    path, _, _ = model
    bad = _with_meta(_members(path), lambda m: m[section].__setitem__(name, value))
    with pytest.raises(nf.ModelFileError, match=match):
        nf.load(_write(tmp_path / "bad.npz", bad))


@pytest.mark.parametrize("member", ["coef_0", "intercept_1", "best_params", "optimizer_m"])
def test_non_finite_arrays_are_refused(model, tmp_path, member):
    path, _, _ = model
    members = _members(path)
    array = np.load(_npy_file(members[f"{member}.npy"]))
    array.flat[0] = np.nan
    members[f"{member}.npy"] = _npy(array)
    with pytest.raises(nf.ModelFileError, match="NaN or infinite"):
        nf.load(_write(tmp_path / "nan.npz", members))


def test_the_kind_is_cross_checked(model, rng, tmp_path):
    path, _, X = model
    as_regressor = _with_meta(_members(path), lambda m: m.update({"class": "MLPRegressor"}))
    with pytest.raises(nf.ModelFileError, match=r"members \['classes.npy'\] do not belong"):
        nf.load(_write(tmp_path / "kind.npz", as_regressor))
    reg = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(X, X[:, 0])
    reg.save(tmp_path / "reg.npz")
    as_classifier = _with_meta(_members(tmp_path / "reg.npz"),
                               lambda m: m.update({"class": "MLPClassifier"}))
    with pytest.raises(nf.ModelFileError, match="inconsistent"):
        nf.load(_write(tmp_path / "kind2.npz", as_classifier))


# ---------------------------------------------------------------- the same checks elsewhere
@pytest.mark.parametrize("tamper", ["extra", "output", "nan", "kind"])
@pytest.mark.parametrize("dump", ["skops", "pickle"])
def test_states_loaded_through_skops_and_pickle_are_checked(model, tmp_path, tamper, dump):
    _, clf, _ = model
    if tamper == "extra":
        clf.predict_proba = "x"
    elif tamper == "output":
        clf.out_activation_ = "identity"
    elif tamper == "nan":
        clf.coefs_[0][0, 0] = np.nan
    else:
        clf.__class__ = MLPRegressor
    with pytest.raises(nf.ModelFileError):
        if dump == "pickle":
            pickle.loads(pickle.dumps(clf))
        else:
            nf.save(clf, tmp_path / "m.skops")
            nf.load(tmp_path / "m.skops")


# ---------------------------------------------------------------- temporary files
def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    return proc.pid


@pytest.mark.skipif(os.name != "posix", reason="writers are asked by pid on POSIX only")
def test_orphaned_temp_files_are_removed_at_the_next_save(model, tmp_path):
    _, clf, _ = model
    host = _host_tag()
    orphan = tmp_path / f".nnopt-save.{host}.{_dead_pid()}.0123abcd.tmp"
    live = tmp_path / f".nnopt-save.{host}.{os.getpid()}.0123abcd.tmp"
    old_style = tmp_path / ".nnopt_ab12cd34.tmp"
    fresh_old_style = tmp_path / ".nnopt_zz12cd34.tmp"
    unrelated = tmp_path / ".nnopt-save-notes.tmp"
    for f in (orphan, live, old_style, fresh_old_style, unrelated):
        f.write_bytes(b"partial")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old_style, (day_ago, day_ago))
    clf.save(tmp_path / "next.npz")
    assert not orphan.exists() and not old_style.exists()
    assert live.exists() and fresh_old_style.exists() and unrelated.exists()
    assert nf.load(tmp_path / "next.npz").get_params() == clf.get_params()


_KILLED_SAVE = """
import sys, time
import numpy as np
import nnopt_fast as nf

clf = nf.load(sys.argv[1])

def slow(f, **arrays):
    f.write(b"partial")
    f.flush()
    time.sleep(120)

np.savez_compressed = slow
clf.save(sys.argv[2])
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_a_save_killed_by_sigterm_leaves_a_recognisable_orphan_that_the_next_save_removes(
        model, tmp_path):
    path, clf, _ = model
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(nf.__file__)), os.environ.get("PYTHONPATH", "")]))
    target = tmp_path / "killed.npz"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(path), str(target)],
                            env=env)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".nnopt-save.*.tmp")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    (orphan,) = tmp_path.glob(".nnopt-save.*.tmp")
    assert not target.exists()
    clf.save(tmp_path / "after.npz")
    assert not orphan.exists()
    assert list(tmp_path.glob(".nnopt-save.*")) == []

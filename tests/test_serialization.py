"""est.save(path) / nf.load(path): round trips, and clear errors on every kind of bad file."""

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import nnopt_fast as nf
from nnopt_fast import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _fit(Est, X, y, **kw):
    params = dict(hidden_layer_sizes=(7, 4), max_iter=5, batch_size=16,
                  learning_rate_init=0.02, random_state=0)
    params.update(kw)
    return Est(**params).fit(X, y)


@pytest.fixture
def saved(rng, tmp_path):
    X = rng.normal(size=(60, 4))
    clf = _fit(MLPClassifier, X, np.array(["a", "b", "c"])[rng.integers(0, 3, 60)])
    path = tmp_path / "model.nnopt"
    clf.save(path)
    return path, clf, X


def _assert_same_model(a, b, X):
    assert type(a) is type(b)
    assert a.get_params() == b.get_params()
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    for name in ("loss_", "loss_curve_", "t_", "n_iter_", "n_layers_", "n_outputs_",
                 "out_activation_", "n_features_in_", "best_loss_"):
        assert getattr(a, name, "absent") == getattr(b, name, "absent"), name


def test_classifier_round_trip_string_labels(saved):
    path, clf, X = saved
    back = nf.load(path)
    _assert_same_model(back, clf, X)
    assert back.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


@pytest.mark.parametrize("case", ["float32-binary", "multilabel", "object-labels",
                                  "regressor-2out", "lbfgs", "dataframe", "dropout-tuple"])
def test_round_trips(rng, tmp_path, case):
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(int)
    if case == "float32-binary":
        X = X.astype(np.float32)
        est = _fit(MLPClassifier, X, y + 5)
    elif case == "multilabel":
        est = _fit(MLPClassifier, X, (X > 0).astype(int))
    elif case == "object-labels":
        est = _fit(MLPClassifier, X, np.array(["no", "yes"], dtype=object)[y])
    elif case == "regressor-2out":
        est = _fit(MLPRegressor, X, X[:, :2] * 2.0, early_stopping=True)
    elif case == "lbfgs":
        est = _fit(MLPRegressor, X, X[:, 0], solver="lbfgs")
    elif case == "dataframe":
        import pandas as pd  # in the test extra
        X = pd.DataFrame(X, columns=["u", "v", "w"])
        est = _fit(MLPClassifier, X, y)
    else:
        est = _fit(MLPClassifier, X, y, dropout=(0.1, 0.2), l1=0.5, l1_method="proximal")
    est.save(tmp_path / "m")
    back = nf.load(tmp_path / "m")
    _assert_same_model(back, est, X)
    if case == "dataframe":
        np.testing.assert_array_equal(back.feature_names_in_, ["u", "v", "w"])
    if case == "regressor-2out":
        assert back.validation_scores_ == est.validation_scores_
        assert back.validation_loss_curve_ == est.validation_loss_curve_
    if case == "multilabel":
        assert back.predict(X).shape == (50, 3)
    # A loaded estimator keeps training (warm start) like the original.
    if est.solver != "lbfgs" and not est.early_stopping:
        yy = est.predict(X) if case != "regressor-2out" else X[:, :2]
        est.set_params(warm_start=True, max_iter=2).fit(X, yy)
        back.set_params(warm_start=True, max_iter=2).fit(X, yy)
        for u, v in zip(est.coefs_, back.coefs_):
            np.testing.assert_allclose(u, v, rtol=1e-6, atol=1e-7)


def test_file_is_plain_npz_with_json_metadata(saved):
    path, clf, _ = saved
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(npz["__meta__"].tobytes())
        assert npz["coef_0"].shape == clf.coefs_[0].shape
    assert meta["format"] == "nnopt_fast.estimator" and meta["format_version"] == 2
    assert meta["class"] == "MLPClassifier"
    import sklearn

    assert meta["versions"]["nnopt_fast"] == nf.__version__
    assert meta["versions"]["numpy"] == np.__version__
    assert meta["versions"]["scikit-learn"] == sklearn.__version__
    assert meta["params"]["hidden_layer_sizes"] == [7, 4]
    assert meta["dtype"] == "float64"


def test_unsaveable(rng, tmp_path):
    with pytest.raises(NotFittedError):
        MLPClassifier().save(tmp_path / "x")
    X = rng.normal(size=(20, 2))
    labels = np.empty(20, dtype=object)
    labels[:] = [(i % 2, "t") for i in range(20)]
    clf = _fit(MLPClassifier, X, np.array([str(t) for t in labels]))
    clf.classes_ = np.array([(0, "t"), (1, "t")], dtype=object)
    with pytest.raises(TypeError, match="cannot be stored without pickle"):
        clf.save(tmp_path / "x")
    assert not (tmp_path / "x").exists()


def _rewrite(path, out, mutate_meta=None, drop=None):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    if mutate_meta:
        mutate_meta(meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    for k in drop or ():
        del arrays[k]
    with open(out, "wb") as f:
        np.savez(f, **arrays)
    return out


def test_truncated_and_corrupted(saved, tmp_path):
    path, _, _ = saved
    raw = path.read_bytes()
    (tmp_path / "trunc").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(nf.ModelFileError, match="corrupted or truncated"):
        nf.load(tmp_path / "trunc")
    flipped = bytearray(raw)
    for i in range(len(raw) // 4, len(raw) // 4 + 40):
        flipped[i] ^= 0xFF
    (tmp_path / "flip").write_bytes(bytes(flipped))
    with pytest.raises(nf.ModelFileError):
        nf.load(tmp_path / "flip")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(nf.ModelFileError, match="not an nnopt_fast model"):
        nf.load(tmp_path / "empty")


def test_wrong_version_and_wrong_kind(saved, tmp_path):
    path, _, _ = saved
    newer = _rewrite(path, tmp_path / "v3", lambda m: m.update(
        format_version=3, versions={"nnopt_fast": "9.0"}))
    with pytest.raises(nf.ModelFileError, match="format version 3, written by nnopt_fast 9.0; "
                                                ".*Upgrade nnopt_fast"):
        nf.load(newer)
    other = _rewrite(path, tmp_path / "other", lambda m: m.update({"class": "os.system"}))
    with pytest.raises(nf.ModelFileError, match="os.system"):
        nf.load(other)
    fmt = _rewrite(path, tmp_path / "fmt", lambda m: m.update(format="something.else"))
    with pytest.raises(nf.ModelFileError, match="not an nnopt_fast estimator"):
        nf.load(fmt)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(nf.ModelFileError, match=r"unexpected members \['a.npy'\]"):
        nf.load(plain)
    np.savez(plain, coef_0=np.zeros(3))
    with pytest.raises(nf.ModelFileError, match="no __meta__"):
        nf.load(plain)
    (tmp_path / "text").write_text("hello")
    with pytest.raises(nf.ModelFileError, match="not an nnopt_fast model file"):
        nf.load(tmp_path / "text")
    missing = _rewrite(path, tmp_path / "missing", drop=["coef_1"])
    with pytest.raises(nf.ModelFileError, match="inconsistent"):
        nf.load(missing)
    shape = _rewrite(path, tmp_path / "shape",
                     lambda m: m.update(layer_shapes=[[4, 8], [8, 4], [4, 3]]))
    with pytest.raises(nf.ModelFileError, match="unexpected shape"):
        nf.load(shape)
    with pytest.raises(FileNotFoundError):
        nf.load(tmp_path / "nope")
    assert issubclass(nf.ModelFileError, ValueError)


class _Boom:
    def __reduce__(self):
        return (open, ("/nonexistent-dir/pwned", "w"))


def test_load_never_unpickles(tmp_path):
    bad = tmp_path / "evil.npz"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("__meta__.npy", pickle.dumps(_Boom()))
    with pytest.raises(nf.ModelFileError):
        nf.load(bad)
    obj = tmp_path / "obj.npz"
    np.savez(obj, __meta__=np.array([_Boom()], dtype=object))
    with pytest.raises(nf.ModelFileError):
        nf.load(obj)


def test_partial_fit_continues_after_load(rng, tmp_path):
    X = rng.normal(size=(80, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(6,), solver="sgd", momentum=0.9, dropout=0.2,
                        random_state=0)
    clf.partial_fit(X, y, classes=[0, 1])
    clf.save(tmp_path / "m")
    back = nf.load(tmp_path / "m")
    # Velocity, learning rate, dropout seed and step all survive the file.
    for _ in range(2):
        clf.partial_fit(X, y)
        back.partial_fit(X, y)
    for u, v in zip(clf.coefs_, back.coefs_):
        np.testing.assert_array_equal(u, v)

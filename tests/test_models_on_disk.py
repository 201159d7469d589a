"""Pipelines on disk through nf.save (skops), bit-identical round trips, old files, stamps."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import nnopt_fast as nf
from nnopt_fast.kernels import reference as ref
from tolerances import KERNEL_RTOL
from nnopt_fast import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
DATA = Path(__file__).parent / "data"


def _frame(rng, n=120):
    import pandas as pd  # in the test extra

    df = pd.DataFrame({"size": rng.normal(size=n) * 100 + 500, "age": rng.normal(size=n),
                       "color": rng.choice(["red", "green", "blue"], n)})
    y = np.where((df["age"] > 0) ^ (df["color"] == "red"), "keep", "drop")
    return df, y


def _pipeline(**mlp):
    columns = ColumnTransformer([("num", StandardScaler(), ["size", "age"]),
                                 ("cat", OneHotEncoder(), ["color"])])
    params = dict(hidden_layer_sizes=(6,), max_iter=20, batch_size=16, random_state=0)
    params.update(mlp)
    return make_pipeline(columns, MLPClassifier(**params))


def _same_weights(a, b):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)


def test_a_fitted_pipeline_round_trips(rng, tmp_path):
    df, y = _frame(rng)
    pipe = _pipeline(dropout=0.2).fit(df, y)
    nf.save(pipe, tmp_path / "pipe.skops")
    back = nf.load(tmp_path / "pipe.skops")
    np.testing.assert_array_equal(back.predict_proba(df), pipe.predict_proba(df))
    np.testing.assert_array_equal(back.predict(df), pipe.predict(df))
    # ... and keeps training exactly like the original (warm start through the pipeline).
    for p in (pipe, back):
        p.set_params(mlpclassifier__warm_start=True, mlpclassifier__max_iter=3).fit(df, y)
    _same_weights(back[-1], pipe[-1])


def test_a_pipeline_file_is_stamped_and_a_newer_stamp_is_refused(rng, tmp_path):
    import sklearn

    df, y = _frame(rng)
    nf.save(_pipeline().fit(df, y), tmp_path / "pipe.skops")
    with zipfile.ZipFile(tmp_path / "pipe.skops") as z:
        stamp = json.loads(z.read("nnopt_fast.json"))
        members = {n: z.read(n) for n in z.namelist() if n != "nnopt_fast.json"}
    assert stamp["format"] == "nnopt_fast.skops" and stamp["format_version"] == 1
    assert stamp["versions"]["nnopt_fast"] == nf.__version__
    assert stamp["versions"]["numpy"] == np.__version__
    assert stamp["versions"]["scikit-learn"] == sklearn.__version__
    stamp.update(format_version=2, versions={"nnopt_fast": "9.1"})
    with zipfile.ZipFile(tmp_path / "newer.skops", "w") as z:
        for name, raw in members.items():
            z.writestr(name, raw)
        z.writestr("nnopt_fast.json", json.dumps(stamp))
    with pytest.raises(nf.ModelFileError, match="format version 2, written by nnopt_fast "
                                                "9.1.*Upgrade nnopt_fast"):
        nf.load(tmp_path / "newer.skops")


def _untrusted(x):
    return x


def test_a_pipeline_with_types_nnopt_fast_does_not_trust_is_refused(rng, tmp_path):
    df, y = _frame(rng)
    pipe = make_pipeline(_pipeline()[0], FunctionTransformer(_untrusted),
                         MLPClassifier(max_iter=3)).fit(df, y)
    nf.save(pipe, tmp_path / "pipe.skops")
    with pytest.raises(nf.ModelFileError, match="does not trust.*_untrusted"):
        nf.load(tmp_path / "pipe.skops")


def test_a_skops_member_that_would_expand_beyond_the_file_is_refused(rng, tmp_path):
    df, y = _frame(rng)
    nf.save(_pipeline().fit(df, y), tmp_path / "pipe.skops")
    raw = bytearray((tmp_path / "pipe.skops").read_bytes())
    buf = io.BytesIO(raw)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as z:
        with z.open("123456.npy", "w", force_zip64=True) as f:
            for _ in range(64):
                f.write(bytes(1 << 20))
    (tmp_path / "bomb.skops").write_bytes(buf.getvalue())
    with pytest.raises(nf.ModelFileError, match="more than 16 times the file's size"):
        nf.load(tmp_path / "bomb.skops")


def test_a_skops_file_with_deeply_nested_json_is_refused(rng, tmp_path):
    with zipfile.ZipFile(tmp_path / "nested.skops", "w") as z:
        z.writestr("schema.json", "[" * 200_000 + "]" * 200_000)
    with pytest.raises(nf.ModelFileError):
        nf.load(tmp_path / "nested.skops")


def test_a_classifier_state_in_a_regressor_skops_file_is_refused(rng, tmp_path):
    X = rng.normal(size=(40, 3))
    nf.save(MLPClassifier(max_iter=2).fit(X, X[:, 0] > 0), tmp_path / "clf.skops")
    with zipfile.ZipFile(tmp_path / "clf.skops") as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["schema.json"] = (members["schema.json"].replace(b"_classifier", b"_regressor")
                              .replace(b'"MLPClassifier"', b'"MLPRegressor"'))
    with zipfile.ZipFile(tmp_path / "swapped.skops", "w") as z:
        for name, raw in members.items():
            z.writestr(name, raw)
    with pytest.raises(nf.ModelFileError, match="regressor has no classes_"):
        nf.load(tmp_path / "swapped.skops")


@pytest.mark.parametrize("fmt", ["npz", "skops"])
@pytest.mark.parametrize("solver", ["adam", "nesterov"])
def test_save_load_partial_fit_equals_no_save(rng, tmp_path, fmt, solver):
    X = rng.normal(size=(90, 5))
    y = np.array(["x", "y", "z"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    opt = dict(solver="adam") if solver == "adam" else dict(solver="sgd", momentum=0.9)
    clf = MLPClassifier(hidden_layer_sizes=(7, 4), dropout=(0.3, 0.1), batch_size=20,
                        learning_rate_init=0.02, random_state=3, **opt)
    for chunk in np.array_split(np.arange(90), 3):
        clf.partial_fit(X[chunk], y[chunk], classes=["x", "y", "z"])
    if fmt == "npz":
        clf.save(tmp_path / "m")
    else:
        nf.save(clf, tmp_path / "m")
    back = nf.load(tmp_path / "m")
    # Adam's moments and step, the momentum, the rate and the dropout counters all survive.
    for name in ("velocity", "m", "v"):
        np.testing.assert_array_equal(getattr(back._optimizer, name),
                                      getattr(clf._optimizer, name))
    assert (back._optimizer.t, back._optimizer.learning_rate) == (clf._optimizer.t,
                                                                  clf._optimizer.learning_rate)
    assert (back._dropout_seed, back._dropout_step) == (clf._dropout_seed, clf._dropout_step)
    for chunk in np.array_split(np.arange(90), 3):
        clf.partial_fit(X[chunk], y[chunk])
        back.partial_fit(X[chunk], y[chunk])
    _same_weights(back, clf)
    assert back.loss_curve_ == clf.loss_curve_ and back.t_ == clf.t_


def test_files_of_format_1_still_load():
    # Written by nnopt_fast 0.1's est.save (format 1), with the predictions it made then.
    expected = np.load(DATA / "v1_expected.npz")
    X = expected["X"]
    clf = nf.load(DATA / "classifier_v1.npz")
    assert isinstance(clf, MLPClassifier) and clf.dropout == 0.1
    # The weights load exactly: the reference forward pass that made the predictions then
    # makes them again, bit for bit ...
    Z = np.empty((X.shape[0], clf.coefs_[-1].shape[1]), X.dtype)
    ref.forward(clf.coefs_, clf.intercepts_, clf.activation, X, Z)
    np.testing.assert_array_equal(ref.output_activation(clf.out_activation_, Z),
                                  expected["classifier_proba"])
    # ... and the compiled one, which predict_proba runs now, to the kernels' rounding.
    np.testing.assert_allclose(clf.predict_proba(X), expected["classifier_proba"],
                               rtol=KERNEL_RTOL[X.dtype], atol=0)
    np.testing.assert_array_equal(clf.predict(X), expected["classifier_pred"])
    assert clf.get_params()["class_weight"] is None  # a parameter added since
    reg = nf.load(DATA / "regressor_v1.npz")
    assert isinstance(reg, MLPRegressor) and reg.early_stopping
    Z = np.empty((X.shape[0], reg.coefs_[-1].shape[1]), X.dtype)
    ref.forward(reg.coefs_, reg.intercepts_, reg.activation, X, Z)
    np.testing.assert_array_equal(Z.reshape(expected["regressor_pred"].shape),
                                  expected["regressor_pred"])
    np.testing.assert_allclose(reg.predict(X), expected["regressor_pred"],
                               rtol=KERNEL_RTOL[X.dtype], atol=1e-15)
    clf.partial_fit(X, clf.predict(X))  # and it trains on

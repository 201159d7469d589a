"""The command line's files: CSV cases of the one loader, the model file, predict, history."""

import csv
import json
import re

import numpy as np
import pandas as pd
import pytest

import nnopt_fast as nf
from nnopt_fast import cli
from nnopt_fast.cli.data import infer_task, load_data


def run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def accuracy(out, which="validation"):
    return float(re.search(rf"^{which} accuracy:\s+([0-9.]+)$", out, re.M).group(1))


@pytest.fixture
def cancer(rng):
    """A two-class table like breast cancer's: 200 rows, 5 features, the label last."""
    X = rng.normal(size=(200, 5)) * [1.0, 10.0, 100.0, 0.1, 5.0] + [0, 50, 500, 0, 10]
    y = (X[:, 0] + X[:, 3] * 10 > 0).astype(int)
    return pd.DataFrame(np.column_stack([X, y]), columns=["a", "b", "c", "d", "e", "target"])


def write_rows(path, rows):
    path.write_text("".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return path


QUIET = ["--backend", "numpy", "--quiet", "--epochs", "5"]


# ---------------------------------------------------------------------------
# the CSV cases
# ---------------------------------------------------------------------------
def test_a_bad_field_in_the_first_row_of_a_headerless_file_is_an_error(tmp_path, capsys,
                                                                        cancer):
    rows = cancer.values.tolist()
    rows[0][2] = "abc"
    path = write_rows(tmp_path / "bad_first.csv", rows)
    status, out, err = run(capsys, "train", "--data", path, *QUIET)
    # Not read as a header and retried without that row: it names the field.
    assert status == 2 and out == ""
    assert err.strip() == ("nnopt-fast: error: --data: bad_first.csv: line 1, column 3: "
                           "'abc' is not a number (if it is a header, pass --header yes)")


@pytest.mark.parametrize("header", [False, True])
def test_a_bad_field_later_names_its_own_line(tmp_path, capsys, cancer, header):
    rows = cancer.values.tolist()
    rows[99][4] = "1.5.2"
    path = tmp_path / "bad_later.csv"
    write_rows(path, ([list(cancer.columns)] if header else []) + rows)
    status, _, err = run(capsys, "train", "--data", path, *QUIET)
    line = 101 if header else 100
    column = "column 5 ('e')" if header else "column 5"
    assert status == 2
    assert f"line {line}, {column}: '1.5.2' is not a number" in err


def test_header_or_not_index_column_or_not_the_same_run(tmp_path, capsys, cancer):
    cancer.to_csv(tmp_path / "named.csv", index=False)
    cancer.to_csv(tmp_path / "indexed.csv")  # pandas' default: an unnamed index column
    write_rows(tmp_path / "bare.csv", cancer.values.tolist())
    results = {}
    for name in ("named", "indexed", "bare"):
        status, out, _ = run(capsys, "train", "--data", tmp_path / f"{name}.csv", *QUIET)
        assert status == 0, out
        assert "200 samples, 5 features, 2 classes" in out
        results[name] = (accuracy(out, "train"), accuracy(out))
        assert ("header: yes (detected" in out) == (name != "bare")
        assert ("an index pandas wrote: dropped" in out) == (name == "indexed")
    assert results["named"] == results["indexed"] == results["bare"]
    # --header no on a named file: its names are data, and one of them is not a number.
    status, _, err = run(capsys, "train", "--data", tmp_path / "named.csv", "--header", "no",
                         *QUIET)
    assert status == 2 and "line 1, column 1: 'a' is not a number" in err


def test_pandas_default_column_names_are_a_header(tmp_path, cancer):
    frame = pd.DataFrame(cancer.values)  # columns 0..5
    frame.to_csv(tmp_path / "numbered.csv", index=False)
    data = load_data(str(tmp_path / "numbered.csv"))
    assert data.X.shape == (200, 5) and data.feature_names == ["0", "1", "2", "3", "4"]
    np.testing.assert_array_equal(data.y, cancer["target"].to_numpy())


def test_a_row_counter_in_a_headerless_file_is_warned_about(tmp_path, capsys, cancer):
    rows = [[k, *row] for k, row in enumerate(cancer.values.tolist())]
    status, out, _ = run(capsys, "train", "--data", write_rows(tmp_path / "counted.csv", rows),
                         *QUIET)
    assert status == 0
    assert "warning: the first feature column counts the rows 0, 1, ..., 199" in out
    assert "6 features" in out  # still used, as the warning says


def test_string_labels_are_encoded_and_predicted_back(tmp_path, capsys, cancer):
    frame = cancer.copy()
    frame["target"] = np.where(frame["target"] == 1, "malignant", "benign")
    frame = frame[["target", "a", "b", "c", "d", "e"]]  # the label first, by name below
    frame.to_csv(tmp_path / "named.csv", index=False)
    status, out, _ = run(capsys, "train", "--data", tmp_path / "named.csv", "--label-column",
                         "target", "--save", tmp_path / "m.npz", "--backend", "numpy",
                         "--quiet", "--epochs", "40")
    assert status == 0 and "2 classes" in out and accuracy(out) > 0.8
    status, out, err = run(capsys, "predict", tmp_path / "m.npz", "--data",
                           tmp_path / "named.csv")
    assert status == 0
    predictions = out.splitlines()
    assert predictions[0] == "prediction" and len(predictions) == 201
    assert set(predictions[1:]) <= {"benign", "malignant"}
    match = re.search(r"accuracy on the labels in target: ([0-9.]+)", err)
    hits = np.mean(np.array(predictions[1:]) == frame["target"].to_numpy())
    assert float(match.group(1)) == pytest.approx(hits, abs=1e-4)


@pytest.mark.parametrize("spec, expected", [("target", 5), ("6", 5), ("-1", 5), ("1", 0),
                                            ("last", 5)])
def test_label_column_by_name_or_number(tmp_path, cancer, spec, expected):
    cancer.to_csv(tmp_path / "t.csv", index=False)
    data = load_data(str(tmp_path / "t.csv"), label_column=spec)
    np.testing.assert_array_equal(data.y, cancer.iloc[:, expected].to_numpy())
    assert data.X.shape == (200, 5)


@pytest.mark.parametrize("spec, fragment", [("label", "no column named 'label'"),
                                            ("9", "9 is not a column of t.csv")])
def test_a_label_column_that_is_not_there(tmp_path, capsys, cancer, spec, fragment):
    cancer.to_csv(tmp_path / "t.csv", index=False)
    status, _, err = run(capsys, "train", "--data", tmp_path / "t.csv", "--label-column",
                         spec, *QUIET)
    assert status == 2 and fragment in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("y, task", [
    (np.repeat(np.arange(10), 50), "classification"),            # digits-like
    (np.arange(25, 25 + 442) % 214 + 25.0, "regression"),         # diabetes: 214 values
    (np.array(["a", "b"] * 20, dtype=object), "classification"),
    (np.linspace(0, 1, 30), "regression"),
    (np.tile(np.arange(30), 100), "classification"),              # 30 classes, 3,000 rows
])
def test_auto_task(y, task):
    assert infer_task(y)[0] == task


# ---------------------------------------------------------------------------
# train --save, predict
# ---------------------------------------------------------------------------
def test_predict_round_trip_through_the_command_line(tmp_path, capsys, cancer):
    cancer.to_csv(tmp_path / "t.csv", index=False)
    status, out, _ = run(capsys, "train", "--data", tmp_path / "t.csv", "--save",
                         tmp_path / "m.npz", "--epochs", "20", "--quiet")
    assert status == 0 and f"saved: {tmp_path / 'm.npz'}" in out
    status, out, err = run(capsys, "predict", tmp_path / "m.npz", "--data", tmp_path / "t.csv",
                           "--out", tmp_path / "p.csv", "--proba")
    assert status == 0 and out == ""
    with open(tmp_path / "p.csv", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["prediction", "p(0)", "p(1)"]
    # The same numbers as the saved network on the saved scaling.
    saved = nf.load_checkpoint(tmp_path / "m.npz")
    X = cancer.iloc[:, :5].to_numpy()
    Z = (X - saved.arrays["x_mean"]) / saved.arrays["x_scale"]
    proba = saved.net.predict_proba(Z)
    assert [row[0] for row in table[1:]] == [str(k) for k in proba.argmax(axis=1)]
    hits = np.mean(proba.argmax(axis=1) == cancer["target"].to_numpy())
    assert f"accuracy on the labels in target: {hits:.4f}" in err
    np.testing.assert_allclose(np.array([row[1:] for row in table[1:]], dtype=float), proba,
                               rtol=1e-5, atol=1e-6)
    assert saved.metadata["feature_names"] == ["a", "b", "c", "d", "e"]
    assert saved.state.epoch == 20
    # A file of the features alone (no label column) predicts the same.
    cancer.iloc[:, :5].to_csv(tmp_path / "features.csv", index=False)
    status, out, err = run(capsys, "predict", tmp_path / "m.npz", "--data",
                           tmp_path / "features.csv")
    assert status == 0 and out.splitlines()[1:] == [row[0] for row in table[1:]]
    assert "accuracy" not in err


def test_regression_round_trip_in_the_targets_units(tmp_path, capsys, rng):
    X = rng.normal(size=(300, 3))
    y = 1000.0 + 300.0 * X[:, 0] - 100.0 * X[:, 1] + rng.normal(size=300)
    np.savez(tmp_path / "r.npz", X=X, y=y)
    status, out, _ = run(capsys, "train", "--data", tmp_path / "r.npz", "--save",
                         tmp_path / "m.npz", "--epochs", "60", "--quiet", "--layers", "16")
    assert status == 0 and "a regression target" in out
    assert float(re.search(r"^validation R\^2:\s+([0-9.]+)", out, re.M).group(1)) > 0.9
    status, out, err = run(capsys, "predict", tmp_path / "m.npz", "--data", tmp_path / "r.npz")
    pred = np.array(out.splitlines()[1:], dtype=float)
    assert np.sqrt(np.mean((pred - y) ** 2)) < 0.2 * y.std()  # in the target's units
    status, _, err = run(capsys, "predict", tmp_path / "m.npz", "--data", tmp_path / "r.npz",
                         "--proba")
    assert status == 2 and "--proba needs a classification model" in err


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_predict_errors_are_one_line(tmp_path, capsys, cancer):
    cancer.to_csv(tmp_path / "t.csv", index=False)
    est = tmp_path / "est.npz"
    nf.MLPClassifier(hidden_layer_sizes=(2,), max_iter=5).fit(np.eye(4), [0, 1, 0, 1]).save(est)
    weights = tmp_path / "w.npz"
    nf.save_checkpoint(weights, nf.MLP([5, 2]))
    run(capsys, "train", "--data", tmp_path / "t.csv", "--save", tmp_path / "m.npz", *QUIET)
    cancer.iloc[:, :3].to_csv(tmp_path / "narrow.csv", index=False)
    for argv, fragment in (
            (["missing.npz", "--data", tmp_path / "t.csv"], "no such model file: missing.npz"),
            ([est, "--data", tmp_path / "t.csv"], "is not an nnopt_fast checkpoint"),
            ([weights, "--data", tmp_path / "t.csv"], "without the scaling and labels"),
            ([tmp_path / "m.npz", "--data", tmp_path / "narrow.csv"],
             "3 feature columns, but the model was trained on 5")):
        status, out, err = run(capsys, "predict", *argv)
        assert status == 2 and out == "" and fragment in err
        assert len(err.strip().splitlines()) == 1


def test_history_file_and_schedule_and_early_stopping_reach_the_trainer(tmp_path, capsys,
                                                                         cancer):
    cancer.to_csv(tmp_path / "t.csv", index=False)
    status, out, _ = run(capsys, "train", "--data", tmp_path / "t.csv", "--epochs", "9",
                         "--lr", "0.01", "--lr-schedule", "step", "--history",
                         tmp_path / "h.csv", *QUIET[:3])
    assert status == 0 and f"history: {tmp_path / 'h.csv'}" in out
    history = pd.read_csv(tmp_path / "h.csv")
    assert list(history.columns) == ["epoch", "loss", "val_loss", "val_score", "lr",
                                     "epoch_time"]
    np.testing.assert_allclose(history["lr"], [0.01] * 3 + [0.001] * 3 + [0.0001] * 3)
    status, out, _ = run(capsys, "train", "--data", tmp_path / "t.csv", "--epochs", "500",
                         "--lr", "0.05", "--early-stopping", "3", "--history",
                         tmp_path / "h.json", *QUIET[:3])
    record = json.loads((tmp_path / "h.json").read_text())
    stopped = len(record["epoch"])
    assert status == 0 and stopped < 500
    best = int(np.argmin(record["val_loss"])) + 1
    assert stopped == best + 3
    assert f"epochs: {stopped} (early stopping: weights of epoch {best})" in out


def test_alpha_is_converted_to_the_trainers_l2(tmp_path, capsys, cancer):
    cancer.to_csv(tmp_path / "t.csv", index=False)
    common = ["train", "--data", tmp_path / "t.csv", "--batch-size", "50", *QUIET]
    # 150 training rows in batches of 50: alpha 0.3 takes the step of l2 = 0.3 * 150 / 50.
    _, by_alpha, _ = run(capsys, *common, "--alpha", "0.3")
    _, by_l2, _ = run(capsys, *common, "--l2", "0.9")
    _, unpenalized, _ = run(capsys, *common)
    final = re.compile(r"final loss: (\S+),")
    assert final.search(by_alpha).group(1) == final.search(by_l2).group(1)
    assert final.search(by_alpha).group(1) != final.search(unpenalized).group(1)


def test_predict_sets_aside_the_label_column_where_training_found_it(tmp_path, capsys,
                                                                       cancer):
    frame = cancer[["target", "a", "b", "c", "d", "e"]]
    write_rows(tmp_path / "first.csv", frame.values.tolist())  # no header, label first
    status, _, _ = run(capsys, "train", "--data", tmp_path / "first.csv", "--label-column",
                       "1", "--save", tmp_path / "m.npz", *QUIET)
    assert status == 0
    status, out, err = run(capsys, "predict", tmp_path / "m.npz", "--data",
                           tmp_path / "first.csv")
    assert status == 0 and len(out.splitlines()) == 201
    assert "accuracy on the labels in column 1" in err
    write_rows(tmp_path / "features.csv", frame.values[:, 1:].tolist())
    status, features_only, _ = run(capsys, "predict", tmp_path / "m.npz", "--data",
                                   tmp_path / "features.csv")
    assert status == 0 and features_only == out

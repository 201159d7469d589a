"""What a fit call skips gives what doing everything afresh gives."""

import warnings

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import validate_data

from nnopt_fast import MLPClassifier, MLPRegressor
from nnopt_fast._validation import all_finite
from nnopt_fast.estimators import _labels
from nnopt_fast.estimators._inputs import CLASSIFIER_Y_KINDS, check_training_data

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(rng, n=103, d=6, k=3):
    X = rng.normal(size=(n, d))
    return X, np.argmax(X[:, :k] + 0.3 * rng.normal(size=(n, k)), axis=1)


# ---------------------------------------------------------------------------- input
def test_plain_arrays_are_taken_as_they_are(rng):
    X, y = _data(rng)
    est = MLPClassifier()
    got_X, got_y = check_training_data(est, X, y, True, CLASSIFIER_Y_KINDS)
    assert got_X is X and got_y is y and est.n_features_in_ == X.shape[1]
    want_X, want_y = validate_data(MLPClassifier(), X, y, multi_output=True,
                                   dtype=(np.float64, np.float32))
    np.testing.assert_array_equal(got_X, want_X)
    np.testing.assert_array_equal(got_y, want_y)


def _bad_inputs(X, y):
    nan_X = X.copy()
    nan_X[3, 1] = np.nan
    inf_X = X.copy()
    inf_X[0, 0] = -np.inf
    return {"nan X": (nan_X, y), "inf X": (inf_X, y), "wide X": (np.hstack([X, X]), y),
            "short y": (X, y[:-1]), "3-D y": (X, y.reshape(-1, 1, 1))}


# A fit afresh takes X of any width; a later partial_fit must match the fitted one.
BAD_INPUT_CASES = ([("fit", case) for case in ("nan X", "inf X", "short y", "3-D y")]
                   + [("partial_fit", case) for case in ("nan X", "inf X", "wide X",
                                                         "short y", "3-D y")])


@pytest.mark.parametrize(("method", "case"), BAD_INPUT_CASES)
def test_bad_plain_input_gets_scikit_learns_error(rng, method, case):
    X, y = _data(rng)
    ours = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    theirs = SkClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    bad_X, bad_y = _bad_inputs(X, y)[case]
    with pytest.raises(ValueError) as expected:
        getattr(theirs, method)(bad_X, bad_y)
    with pytest.raises(ValueError) as got:
        getattr(ours, method)(bad_X, bad_y)
    assert str(got.value) == str(expected.value)


def test_a_nan_target_gets_scikit_learns_error(rng):
    X, y = _data(rng)
    y = y.astype(float)
    y[5] = np.nan
    for ours, theirs in [(MLPRegressor(), SkRegressor()), (MLPClassifier(), SkClassifier())]:
        with pytest.raises(ValueError) as expected:
            theirs.fit(X, y)
        with pytest.raises(ValueError) as got:
            ours.fit(X, y)
        assert str(got.value) == str(expected.value)


def test_feature_names_are_kept_checked_and_forgotten_as_in_scikit_learn(rng):
    pd = pytest.importorskip("pandas")
    X, y = _data(rng)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(frame, y)
    assert list(est.feature_names_in_) == list(frame.columns)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.partial_fit(X, y)
    est.fit(X, y)
    assert not hasattr(est, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est.partial_fit(X, y)


# ---------------------------------------------------------------------------- labels
LABELS = {
    "ints": np.array([0, 1, 1, 0]), "one class": np.array([3, 3]),
    "bools": np.array([True, False, True]), "integral floats": np.array([1.0, 2.0, 3.0]),
    "large ints": np.array([2**40, 1, 5]), "signed zeros": np.array([-0.0, 0.0, 1.0]),
    "strings": np.array(["b", "a", "c", "a"]),
}
NOT_PLAIN = {
    "fractions": np.array([0.5, 1.0]), "beyond int64": np.array([1e20, 1.0]),
    "bytes": np.array([b"a", b"b"]), "objects": np.array([1, "a"], dtype=object),
    "column": np.zeros((3, 1)), "list": [0, 1, 1],
}


@pytest.mark.parametrize("name", list(LABELS))
def test_plain_labels_are_type_of_target_and_fit_classes(name):
    y = LABELS[name]
    y_type, classes, codes = _labels.plain_labels(y)
    assert y_type == type_of_target(y)
    want_classes, want_codes = _labels.fit_classes(y, y_type)
    np.testing.assert_array_equal(classes, want_classes)
    assert classes.dtype == want_classes.dtype
    np.testing.assert_array_equal(codes, want_codes)
    assert codes.dtype == np.int64


@pytest.mark.parametrize("name", list(NOT_PLAIN))
def test_other_labels_are_left_to_type_of_target(name):
    assert _labels.plain_labels(NOT_PLAIN[name]) is None


@pytest.mark.parametrize(("y", "codes"), [
    (np.array([1, 5, 3]), [0, 2, 1]), (np.array([1.0, 3.0]), [0, 1]),
    (np.array([True]), [0]), (np.array([1, 4]), None), (np.array([0]), None),
    (np.array([7]), None), (np.array(["1"]), None), (np.array([1.5]), None),
    (np.array([[1], [3]]), None)])
def test_known_labels_are_encoded_others_left_to_the_full_check(y, codes):
    classes = np.array([1, 3, 5])
    got = _labels.encode_known(y, classes)
    if codes is None:
        assert got is None
    else:
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, codes)
        np.testing.assert_array_equal(got, _labels.encode(y, classes, "multiclass"))


def test_classes_in_another_order_or_as_a_list_are_the_same_classes():
    fitted = np.array(["a", "b", "c"])
    for same in (fitted, ["a", "b", "c"], ["c", "a", "b", "a"], np.array(["b", "c", "a"])):
        assert _labels.same_classes(same, fitted)
    for other in (["a", "b"], ["a", "b", "d"], [1, 2, 3]):
        assert not _labels.same_classes(other, fitted)


def test_label_errors_of_later_partial_fit_calls(rng):
    X, y = _data(rng)
    labels = np.array(["x", "y", "z"])[y]
    est = MLPClassifier(hidden_layer_sizes=(4,))
    est.partial_fit(X, labels, classes=["x", "y", "z"])
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        est.partial_fit(X, np.where(labels == "x", "w", labels))
    with pytest.raises(ValueError, match="is not the same as on last call"):
        est.partial_fit(X, labels, classes=["x", "y"])
    est.partial_fit(X, labels, classes=["z", "y", "x"])
    floats = MLPClassifier(hidden_layer_sizes=(4,))
    floats.partial_fit(X, y.astype(float), classes=[0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="Unknown label type"):
        floats.partial_fit(X, y + 0.5)


# ---------------------------------------------------------------------------- finiteness
@pytest.mark.parametrize("n", [1, 100, 70_000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_every_nan_and_infinity(n, dtype):
    a = np.ones(n, dtype=dtype)
    assert all_finite(a) and all_finite(a.reshape(1, -1))
    for value in (np.nan, np.inf, -np.inf):
        for where in (0, n // 2, n - 1):
            b = a.copy()
            b[where] = value
            assert not all_finite(b)
    assert all_finite(np.zeros(0, dtype=dtype))


def test_all_finite_of_finite_values_whose_sum_overflows():
    big = np.full(70_000, np.finfo(np.float32).max, dtype=np.float32)
    bigger = np.full(70_000, np.finfo(np.float64).max)
    assert all_finite(big) and all_finite(bigger)
    # An infinity of each sign sums to NaN: found as well.
    bigger[:2] = [np.inf, -np.inf]
    assert not all_finite(bigger)

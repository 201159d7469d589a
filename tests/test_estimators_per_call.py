"""What a fit call reuses or skips gives what doing everything afresh gives, bit for bit."""

import copy
import warnings

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.utils import shuffle as sk_shuffle
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import validate_data

import nnopt_fast as nf
from nnopt_fast import MLPClassifier, MLPRegressor
from nnopt_fast._validation import all_finite
from nnopt_fast.estimators import _labels
from nnopt_fast.estimators._inputs import CLASSIFIER_Y_KINDS, check_training_data
from nnopt_fast.estimators._params import check_param_values
from nnopt_fast.estimators._reuse import Reused, reused
from nnopt_fast.estimators._stochastic import shuffled

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

BACKENDS = [name for name, info in nf.backends().items() if info["available"]]
SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.0),
    "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "adam": dict(solver="adam"),
}


def _data(rng, n=103, d=6, k=3):
    X = rng.normal(size=(n, d))
    return X, np.argmax(X[:, :k] + 0.3 * rng.normal(size=(n, k)), axis=1)


def _chunks(n):
    # Unequal chunks: the "auto" batch size (and the training configuration) changes.
    return np.array_split(np.arange(n), [40, 80])


def _state_of(est):
    """Everything a later call continues from, as plain values."""
    opt = est._optimizer
    return dict(weights=[a.copy() for a in est.coefs_ + est.intercepts_],
                buffers=[None if a is None else a.copy() for a in (opt.velocity, opt.m, opt.v)],
                adam_t=opt.t, rate=opt.learning_rate, step=est._dropout_step,
                seed=est._dropout_seed, t_=est.t_, loss_curve=list(est.loss_curve_))


def _assert_same(a, b):
    for x, y in zip(a["weights"], b["weights"]):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a["buffers"], b["buffers"]):
        assert (x is None) == (y is None)
        if x is not None:
            np.testing.assert_array_equal(x, y)
    assert {k: v for k, v in a.items() if k not in ("weights", "buffers")} == \
        {k: v for k, v in b.items() if k not in ("weights", "buffers")}


def _stream(est, X, y, fresh, passes=3, **kw):
    """``passes`` passes of partial_fit over X's chunks; with ``fresh`` each call is made
    on a deep copy, which reuses nothing of the calls before it."""
    states = []
    for _ in range(passes):
        for chunk in _chunks(len(X)):
            if fresh:
                est = copy.deepcopy(est)
            est.partial_fit(X[chunk], y[chunk], **kw)
            states.append(_state_of(est))
    return est, states


# ---------------------------------------------------------------------------- reuse
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("solver", list(SOLVERS))
def test_partial_fit_reusing_buffers_equals_partial_fit_afresh(rng, solver, backend):
    X, y = _data(rng)
    X = X.astype(np.float32)
    params = dict(hidden_layer_sizes=(9, 5), dropout=0.2, learning_rate_init=0.05,
                  random_state=3, n_threads=1, backend=backend, **SOLVERS[solver])
    _, reusing = _stream(MLPClassifier(**params), X, y, fresh=False, classes=[0, 1, 2])
    _, afresh = _stream(MLPClassifier(**params), X, y, fresh=True, classes=[0, 1, 2])
    assert len(reusing) == len(afresh) == 9
    for a, b in zip(reusing, afresh):
        _assert_same(a, b)


def test_a_regressor_and_float64_reuse_alike(rng):
    X, y = _data(rng)
    Y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    params = dict(hidden_layer_sizes=(7,), solver="sgd", learning_rate="invscaling",
                  random_state=0, n_threads=1)
    _, reusing = _stream(MLPRegressor(**params), X, Y, fresh=False)
    _, afresh = _stream(MLPRegressor(**params), X, Y, fresh=True)
    for a, b in zip(reusing, afresh):
        _assert_same(a, b)
    assert reusing[-1]["weights"][0].dtype == np.float64


def test_changing_the_solver_between_calls_starts_its_buffers_afresh(rng):
    X, y = _data(rng)
    results = []
    for fresh in (False, True):
        est = MLPClassifier(hidden_layer_sizes=(8,), random_state=1, n_threads=1)
        est, _ = _stream(est, X, y, fresh, passes=1, classes=[0, 1, 2])
        est.set_params(solver="sgd", momentum=0.5)
        est, states = _stream(est, X, y, fresh, passes=2)
        results.append(states)
    for a, b in zip(*results):
        _assert_same(a, b)


def test_warm_start_fits_reuse_the_network_and_equal_fits_afresh(rng):
    X, y = _data(rng)
    params = dict(hidden_layer_sizes=(8,), warm_start=True, max_iter=2, random_state=2,
                  dropout=0.1, n_threads=1)
    reusing, fresh = MLPClassifier(**params), MLPClassifier(**params)
    for _ in range(3):
        reusing.fit(X, y)
        fresh = copy.deepcopy(fresh).fit(X, y)
        _assert_same(_state_of(reusing), _state_of(fresh))


def test_a_fit_that_the_next_does_not_continue_keeps_no_training_buffers(rng):
    X, y = _data(rng)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, n_threads=1).fit(X, y)
    assert reused(est).state is None
    est.partial_fit(X, y)
    assert reused(est).state is not None


# ---------------------------------------------------------------------------- user weights
def test_weights_changed_in_place_between_calls_are_trained_on(rng):
    X, y = _data(rng)
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, n_threads=1)
    est.partial_fit(X, y, classes=[0, 1, 2])
    est.coefs_[0][...] *= 0.5
    est.intercepts_[1][...] = 0.25
    fresh = copy.deepcopy(est)
    est.partial_fit(X, y)
    fresh.partial_fit(X, y)
    _assert_same(_state_of(est), _state_of(fresh))


def test_assigned_weights_are_trained_on_and_left_unchanged(rng):
    X, y = _data(rng)
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, n_threads=1)
    est.partial_fit(X, y, classes=[0, 1, 2])
    assigned = [0.5 * W for W in est.coefs_]
    kept = [W.copy() for W in assigned]
    est.coefs_ = assigned
    fresh = copy.deepcopy(est)
    est.partial_fit(X, y)
    fresh.partial_fit(X, y)
    _assert_same(_state_of(est), _state_of(fresh))
    for W, before in zip(assigned, kept):
        np.testing.assert_array_equal(W, before)
    assert all(W is not A for W, A in zip(est.coefs_, assigned))


def test_a_nan_written_into_the_weights_is_refused_as_before(rng):
    X, y = _data(rng)
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, n_threads=1)
    est.partial_fit(X, y, classes=[0, 1, 2])
    est.coefs_[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="contains NaN or infinity") as reusing:
        est.partial_fit(X, y)
    # The same weights assigned as new arrays (nothing reused) get the same error.
    est.coefs_ = [W.copy() for W in est.coefs_]
    with pytest.raises(ValueError, match="contains NaN or infinity") as assigned:
        est.partial_fit(X, y)
    assert str(reusing.value) == str(assigned.value)


def test_after_a_failed_call_the_next_one_equals_a_call_afresh(rng):
    X, y = _data(rng)
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", random_state=0, n_threads=1)
    est.partial_fit(X, X[:, 0])
    before = _state_of(est)
    fresh = copy.deepcopy(est)
    with pytest.raises(nf.FitDivergenceError, match="keeps the state it had before"):
        est.partial_fit(X, X[:, 0] * 1e300)
    _assert_same(_state_of(est), before)
    est.partial_fit(X, X[:, 1])
    fresh.partial_fit(X, X[:, 1])
    _assert_same(_state_of(est), _state_of(fresh))


# ---------------------------------------------------------------------------- randomness
@pytest.mark.parametrize("n", [1, 2, 7, 64, 1000])
def test_shuffled_is_sklearn_shuffle_bit_for_bit(rng, n):
    order = rng.permutation(n).astype(np.int64)
    ours, theirs = np.random.RandomState(3), np.random.RandomState(3)
    for _ in range(3):
        a, b = shuffled(order, ours), sk_shuffle(order, random_state=theirs)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
        order = a
    np.testing.assert_array_equal(ours.get_state()[1], theirs.get_state()[1])
    assert ours.get_state()[2:] == theirs.get_state()[2:]


def _same_state(a, b):
    sa, sb = a.get_state(), b.get_state()
    return sa[0] == sb[0] and np.array_equal(sa[1], sb[1]) and sa[2:] == sb[2:]


@pytest.mark.parametrize("seed", [0, 5, 2**32 - 1, np.int64(7), True])
def test_an_integer_seed_gives_a_random_state_as_new(seed):
    kept = Reused()
    first = kept.random_state(seed)
    assert _same_state(first, np.random.RandomState(seed))
    first.standard_normal(3)  # leaves a cached Gaussian behind
    first.permutation(10)
    again = kept.random_state(seed)
    assert again is first and _same_state(again, np.random.RandomState(seed))
    assert _same_state(kept.random_state(11), np.random.RandomState(11))


def test_other_random_states_are_scikit_learns():
    kept, rs = Reused(), np.random.RandomState(1)
    assert kept.random_state(rs) is rs
    assert kept.random_state(None) is np.random.mtrand._rand
    with pytest.raises(ValueError, match="cannot be used to seed"):
        kept.random_state("seed")


# ---------------------------------------------------------------------------- parameters
BAD_PARAMS = [dict(alpha=-1.0), dict(alpha=np.float64(-1)), dict(max_iter=5.0),
              dict(activation="softplus"), dict(batch_size=0), dict(n_threads=0),
              dict(backend="gpu"), dict(momentum=2), dict(class_weight="uniform"),
              dict(random_state="seed")]


@pytest.mark.parametrize("bad", BAD_PARAMS, ids=lambda p: repr(p))
def test_a_bad_parameter_raises_scikit_learns_error_after_good_calls(rng, bad):
    X, y = _data(rng)
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0, n_threads=1)
    est.partial_fit(X, y, classes=[0, 1, 2])
    est.partial_fit(X, y)
    est.set_params(**bad)
    with pytest.raises(ValueError) as expected:
        est._validate_params()
    with pytest.raises(type(expected.value)) as got:
        est.partial_fit(X, y)
    assert str(got.value) == str(expected.value)
    # Assigned as an attribute, without set_params, it is found just the same.
    fresh = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0, n_threads=1)
    fresh.fit(X, y)
    name, value = next(iter(bad.items()))
    setattr(fresh, name, value)
    with pytest.raises(type(expected.value), match=name):
        fresh.fit(X, y)


GOOD_PARAMS = [dict(), dict(alpha=1), dict(random_state=np.random.RandomState(0)),
               dict(class_weight={0: 2.0}), dict(dropout=[0.1]), dict(n_iter_no_change=np.inf),
               dict(n_threads=-1)]


@pytest.mark.parametrize("good", GOOD_PARAMS, ids=lambda p: repr(p))
def test_good_parameters_pass_every_time(good):
    est, kept = MLPClassifier(hidden_layer_sizes=(4,), **good), Reused()
    for _ in range(3):
        check_param_values(est, kept)
        est._validate_params()


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

"""Helpers shared by the diagnose package: seeds, one-thread fits, indexing, losses, joblib runs."""

import copy
import numbers
import time
import warnings
from dataclasses import dataclass

import numpy as np
from joblib import Parallel
from sklearn.base import clone, is_classifier

from ..estimators._group import take  # noqa: F401  (the tools' row indexing)

_CONTROLLER = None


def as_seed_sequence(random_state, name="random_state"):
    """Turn ``random_state`` into a :class:`numpy.random.SeedSequence`.

    None gives fresh OS entropy (results not reproducible); an int or a SeedSequence gives
    reproducible streams; a Generator or RandomState is drawn from once (it advances).
    """
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"{name} must be a non-negative int, got {random_state}")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(2**31 - 1)))
    raise TypeError(
        f"{name} must be None, a non-negative int, a numpy SeedSequence, Generator or "
        f"RandomState, got {type(random_state).__name__}"
    )


def child_seeds(seed_seq, n):
    """Derive ``n`` independent (bootstrap SeedSequence, estimator seed int) pairs.

    Derivation uses the spawn-key scheme explicitly instead of ``SeedSequence.spawn`` on
    the children, so the same child can be reused (e.g. for every value of a parameter
    sweep: common random numbers) without the mutation ``spawn`` implies.
    """
    out = []
    for child in seed_seq.spawn(n):
        boot = np.random.SeedSequence(child.entropy, spawn_key=child.spawn_key + (0,))
        est = np.random.SeedSequence(child.entropy, spawn_key=child.spawn_key + (1,))
        out.append((boot, int(est.generate_state(1, np.uint32)[0])))
    return out


def derived_int(seed_seq, index):
    """A reproducible 32-bit seed derived from ``seed_seq`` for the sub-task ``index``."""
    ss = np.random.SeedSequence(seed_seq.entropy, spawn_key=seed_seq.spawn_key + (1000 + index,))
    return int(ss.generate_state(1, np.uint32)[0])


def param_label(name):
    """The column label of parameter ``name`` in a report's table: its last component
    (``alpha`` of ``pipeline``'s ``mlpclassifier__alpha``); tables name the full
    parameter in their title."""
    return name.rsplit("__", 1)[-1]


def fmt(x):
    """A number for a report: four significant digits, no exponent from 1,000 to 10 million."""
    return f"{x:.0f}" if 1e3 <= abs(x) < 1e7 else f"{x:.4g}"


def check_estimator(estimator, name="estimator"):
    """Raise TypeError unless ``estimator`` looks like a scikit-learn estimator."""
    for attr in ("fit", "predict", "get_params", "set_params"):
        if not hasattr(estimator, attr):
            raise TypeError(
                f"{name} must be a scikit-learn compatible estimator with fit, predict, "
                f"get_params and set_params; {type(estimator).__name__} has no {attr}"
            )


def has_param(estimator, param):
    """True if ``param`` is one of the estimator's constructor parameters."""
    return param in estimator.get_params(deep=False)


def find_param(estimator, name):
    """The ``set_params`` key of parameter ``name``: ``name`` itself, or the unique nested
    ``step__name`` (e.g. ``mlp__alpha`` in a Pipeline); None if absent or ambiguous."""
    params = estimator.get_params(deep=True)
    if name in params:
        return name
    keys = [k for k in params if k.endswith("__" + name)]
    return keys[0] if len(keys) == 1 else None


def prepare(estimator, params=None, seed=None, single_thread=True):
    """Clone ``estimator``, apply ``params``, then the round's seed and ``n_threads=1``.

    ``n_threads`` is set on the estimator and on any nested estimator (``step__n_threads``)
    that has it: one fit per worker keeps the thread budget owned by joblib, and it makes
    results independent of the thread layout. ``seed`` overrides ``random_state`` the same way.
    """
    est = clone(estimator)
    if params:
        est.set_params(**params)
    names = est.get_params(deep=True)
    update = {}
    for key in names:
        leaf = key.rsplit("__", 1)[-1]
        if single_thread and leaf == "n_threads":
            update[key] = 1
        if seed is not None and leaf == "random_state":
            update[key] = seed
    if update:
        est.set_params(**update)
    return est


class Clones:
    """:func:`prepare` for the many fits of one estimator: it is cloned once, each fit
    gets a copy of that clone (a fresh estimator with the same parameters, as a clone of
    a clone), with its parameters and seed set. Parameters that name a nested estimator's
    (``step__name``) or replace an estimator take :func:`prepare` itself."""

    def __init__(self, estimator, single_thread=True):
        self.estimator, self.single_thread = estimator, single_thread
        self.proto = prepare(estimator, None, None, single_thread)
        self.own = self.proto.get_params(deep=False)
        leaves = [k for k in self.proto.get_params(deep=True)
                  if k.rsplit("__", 1)[-1] == "random_state"]
        self.flat_seed = [k for k in leaves if "__" not in k]
        self.nested_seed = [k for k in leaves if "__" in k]

    def make(self, params=None, seed=None):
        """A fresh estimator as ``prepare(estimator, params, seed, single_thread)``."""
        params = params or {}
        if any(k not in self.own or hasattr(v, "get_params") or
               hasattr(self.own[k], "get_params") for k, v in params.items()):
            return prepare(self.estimator, params, seed, self.single_thread)
        est = copy.deepcopy(self.proto)
        for key, value in params.items():
            setattr(est, key, value)
        if seed is not None:
            for key in self.flat_seed:
                setattr(est, key, seed)
            if self.nested_seed:
                est.set_params(**{key: seed for key in self.nested_seed})
        return est


def _controller():
    # Building a ThreadpoolController inspects every loaded library: do it once per process.
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def one_blas_thread():
    """Context manager limiting BLAS/OpenMP pools to one thread for the fit inside it.

    Parallel rounds already use every core; a multi-threaded GEMM inside each would
    oversubscribe them, and the thread count must not change the numbers.
    """
    return _controller().limit(limits=1)


def timed_fit(est, X, y):
    """Fit ``est`` under a one-thread BLAS limit and return the seconds it took."""
    with one_blas_thread():
        t0 = time.perf_counter()
        est.fit(X, y)
        return time.perf_counter() - t0


def n_samples_of(X, name="X"):
    """Number of rows of an array-like (ndarray, DataFrame, sparse matrix, list)."""
    if hasattr(X, "shape") and len(X.shape) >= 1:
        return int(X.shape[0])
    try:
        return len(X)
    except TypeError:
        raise TypeError(f"{name} must be an array-like with a length, got {type(X).__name__}") from None


def as_target(y, n, name="y"):
    """``y`` as an ndarray with ``n`` rows (labels of any dtype are kept as they are)."""
    arr = np.asarray(y)
    if arr.ndim == 0 or arr.shape[0] != n:
        got = arr.shape[0] if arr.ndim else 0
        raise ValueError(f"{name} has {got} samples but its X has {n}")
    return arr


def check_n_rounds(n_rounds, name="n_rounds", low=1):
    """Validate a positive integer count."""
    if not isinstance(n_rounds, numbers.Integral) or isinstance(n_rounds, bool):
        raise TypeError(f"{name} must be an int, got {type(n_rounds).__name__}")
    if n_rounds < low:
        raise ValueError(f"{name} must be >= {low}, got {n_rounds}")
    return int(n_rounds)


def loss_name(estimator):
    """The loss the curves report for ``estimator``: log-loss (classifiers) or mse."""
    if is_classifier(estimator):
        return "log_loss" if hasattr(estimator, "predict_proba") else "zero_one"
    return "mse"


def full_proba(est, X, labels):
    """``predict_proba`` over all ``labels`` (float64, rows renormalized).

    A classifier fitted on a subset that missed a class gets probability 0 for it (log-loss
    then clips it: large but finite, as it should be). Rows are renormalized because
    float32 probabilities sum to 1 only to ~1e-7, which log-loss would warn about.
    """
    proba = np.asarray(est.predict_proba(X), dtype=np.float64)
    classes = np.asarray(est.classes_)
    if len(classes) == len(labels) and np.array_equal(classes, labels):
        full = proba.copy()
    else:
        full = np.zeros((proba.shape[0], len(labels)))
        full[:, np.searchsorted(labels, classes)] = proba
    full /= full.sum(axis=1, keepdims=True)
    return full


def predicts_argmax(est):
    """True for classifiers whose ``predict`` is known to be the argmax of ``predict_proba``.

    nnopt_fast's and scikit-learn's MLPClassifier (alone or ending a Pipeline): their
    accuracy and log-loss can then come from one forward pass instead of two.
    """
    from sklearn.neural_network import MLPClassifier as SkMLP

    final = est.steps[-1][1] if hasattr(est, "steps") else est
    try:
        from ..estimators import MLPClassifier as NfMLP
    except ImportError:
        NfMLP = SkMLP
    return isinstance(final, (SkMLP, NfMLP))


def log_loss_of(y, proba, labels):
    """scikit-learn's ``log_loss(y, proba, labels=labels)``, bit for bit, for the
    probabilities of :func:`full_proba` (float64, one column per entry of the sorted
    ``labels``, rows summing to 1), without its input validation and label binarization
    (4-5 ms a call, half the cost of a validation curve's fits).

    The mean over rows of ``-log(clip(p[i, y_i], eps, 1 - eps))``: what scikit-learn's
    one-hot ``-sum(xlogy(Y, clip(P)), axis=1)`` is, exactly, as every other term is 0.

    Raises
    ------
    ValueError
        If a label of ``y`` is not in ``labels``.
    """
    y, labels = np.asarray(y), np.asarray(labels)
    if len(labels) < 2 or proba.dtype != np.float64 or proba.shape != (len(y), len(labels)):
        from sklearn.metrics import log_loss

        return float(log_loss(y, proba, labels=labels))
    col = np.searchsorted(labels, y)
    col = np.minimum(col, len(labels) - 1)
    if not np.array_equal(labels[col], y):
        raise ValueError("y holds labels missing from labels")
    eps = np.finfo(np.float64).eps
    p = np.clip(proba[np.arange(len(y)), col], eps, 1 - eps)
    return float(np.mean(-np.log(p)))


def model_loss(est, X, y, labels):
    """Log-loss of a fitted classifier (over all ``labels``), its 0-1 error, or the mse."""
    if is_classifier(est):
        if not hasattr(est, "predict_proba"):
            return float(np.mean(np.asarray(est.predict(X)) != y))
        return log_loss_of(y, full_proba(est, X, labels), labels)
    pred = np.asarray(est.predict(X), dtype=np.float64)
    return float(np.mean((pred.reshape(np.shape(y)) - np.asarray(y, dtype=np.float64)) ** 2))


class capture_warnings:
    """Context manager collecting the warnings of a worker's task into a list as
    (category, message), for :func:`run_parallel` to report once per distinct message."""

    def __init__(self, caught):
        self.caught = caught
        self._cm = warnings.catch_warnings(record=True)

    def __enter__(self):
        self._record = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        self.caught.extend((w.category, str(w.message)) for w in self._record)
        return False


def run_parallel(tasks, n_jobs, progress=False, desc=None, grouped=False):
    """Run joblib ``delayed`` tasks in order, optionally under a tqdm progress bar.

    Whatever joblib backend is active (``joblib.parallel_backend("dask")`` included) runs
    them. Each task returns ``(result, caught)``, ``caught`` being the warnings of its fit,
    or with ``grouped`` a list of them (a task that fitted several); the results come back
    one per fit, in order, and the warnings are re-issued here once per distinct message,
    with the number of fits that raised it.
    """
    tasks = list(tasks)
    parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    outputs = parallel(tasks)
    if progress:
        from tqdm.auto import tqdm

        outputs = tqdm(outputs, total=len(tasks), desc=desc, leave=False)
    results, counts = [], {}
    for output in outputs:
        for result, caught in (output if grouped else [output]):
            results.append(result)
            for key in dict.fromkeys(caught):
                counts[key] = counts.get(key, 0) + 1
    for (category, message), k in counts.items():
        warnings.warn(fit_warning(category, f"{k} of {len(results)} fits: {message}", k,
                                  len(results)), stacklevel=3)
    return results


def fit_warning(category, text, n_fits, n_total):
    """A ``category`` warning saying ``text``, carrying ``n_fits`` (how many fits raised it)
    and ``n_total`` (of how many), so that a caller can count them instead of showing them."""
    try:
        warning = category(text)
    except TypeError:  # a category whose constructor takes other arguments
        warning = UserWarning(text)
    warning.n_fits, warning.n_total = n_fits, n_total
    return warning


@dataclass
class Baseline:
    """The scores of a constant predictor: the training rows' majority class (or mean).

    Attributes
    ----------
    error : float
        Misclassification rate, or mse.
    loss : float
        Log-loss of the training rows' class frequencies, or mse.
    score : float
        Accuracy, or R^2 (at most 0 on the rows it is measured on).
    """

    error: float
    loss: float
    score: float


def constant_baseline(y_train, y_test, classifier, labels=None):
    """The :class:`Baseline` of a constant predictor fitted on ``y_train``, on ``y_test``."""
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if classifier:
        labels = np.unique(y_train) if labels is None else labels
        counts = np.array([np.sum(y_train == c) for c in labels], dtype=np.float64)
        prior = counts / counts.sum()
        majority = labels[int(np.argmax(counts))]
        accuracy = float(np.mean(y_test == majority))
        proba = np.broadcast_to(prior, (len(y_test), len(labels)))
        return Baseline(1.0 - accuracy, log_loss_of(y_test, proba, labels), accuracy)
    yt, yv = y_train.astype(np.float64), y_test.astype(np.float64)
    mse = float(np.mean((yv - yt.mean(axis=0)) ** 2))
    spread = float(np.mean((yv - yv.mean(axis=0)) ** 2))
    return Baseline(mse, mse, 1.0 - mse / spread if spread > 0 else 0.0)


def mean_baseline(splits, y, classifier, labels=None):
    """The :class:`Baseline` averaged over the (train, test) index pairs ``splits``."""
    parts = [constant_baseline(y[tr], y[te], classifier, labels) for tr, te in splits]
    return Baseline(*(float(np.mean([getattr(b, f) for b in parts]))
                      for f in ("error", "loss", "score")))

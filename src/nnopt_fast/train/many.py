"""``nf.train_many``: many networks of one architecture trained together."""

import copy
import numbers

import numpy as np

from .._validation import check_sample_weight, check_scalar
from ..kernels import get_backend
from .group import Member, run_group
from .inputs import check_training_data
from .loop import EpochDriver
from .threads import resolve_n_threads
from .trainer import RunSetup, TrainingInterrupted, check_net

__all__ = ["train_many", "Histories"]


class Histories(list):
    """The :class:`~nnopt_fast.train.History` of every model of ``nf.train_many``, in
    order; ``nets`` holds the trained networks (the copies of a template)."""

    def __init__(self, histories, nets):
        super().__init__(histories)
        self.nets = list(nets)


def _is_sequence(value):
    return isinstance(value, (list, tuple, np.ndarray))


def _count(name, value, counts):
    """Note the number of models a per-model argument gives."""
    if value is not None:
        counts.setdefault(len(value), name)


def _per_model(value, name, K):
    """A value for every model: ``value`` itself for each, or the entries of a
    sequence of K values."""
    if not _is_sequence(value):
        return [value] * K
    if len(value) != K:
        raise ValueError(f"{name} must be one value or one per model ({K}), got "
                         f"{len(value)} values")
    return list(value)


def _seeds(random_state, K):
    """One ``random_state`` per model: the children of one seed, or K given ones."""
    if _is_sequence(random_state):
        return _per_model(random_state, "random_state", K)
    if isinstance(random_state, np.random.Generator):
        return random_state.spawn(K)
    if random_state is None:
        return np.random.SeedSequence().spawn(K)
    if isinstance(random_state, np.random.SeedSequence):
        return random_state.spawn(K)
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.SeedSequence(int(random_state)).spawn(K)
    raise TypeError(f"random_state must be None, an int, a SeedSequence, a Generator or "
                    f"one of these per model, got {type(random_state).__name__}")


def _callbacks(callbacks, K):
    """Each model's callbacks: its own copy of one list, or its entry of K lists."""
    if callbacks is None:
        return [None] * K
    callbacks = list(callbacks)
    if callbacks and all(c is None or isinstance(c, (list, tuple)) for c in callbacks):
        return _per_model(callbacks, "callbacks", K)
    return [copy.deepcopy(callbacks) for _ in range(K)]


def _n_models(nets, n_models, per_model):
    """The number of models, K, and the error naming an argument that disagrees."""
    counts = {}
    if isinstance(nets, (list, tuple)):
        counts[len(nets)] = "nets"
    if n_models is not None:
        counts.setdefault(check_scalar(n_models, "n_models", kind="int", low=1),
                          "n_models")
    for name, value in per_model.items():
        _count(name, value, counts)
    if not counts:
        raise ValueError("train_many needs a list of nets, n_models, or a per-model "
                         "argument (indices, sample_weights, a sequence of seeds or of "
                         "hyper-parameters) to know how many models to train")
    if len(counts) > 1:
        (k1, a), (k2, b) = list(counts.items())[:2]
        raise ValueError(f"{a} gives {k1} models but {b} gives {k2}")
    return next(iter(counts))


def _nets(nets, K):
    if isinstance(nets, (list, tuple)):
        nets = list(nets)
        if not nets:
            raise ValueError("nets must hold at least one network")
        for k, net in enumerate(nets):
            check_net(net, f"nets[{k}]")
    else:
        check_net(nets, "nets")
        nets = [nets.copy() for _ in range(K)]
    first = nets[0]
    arch = (first.layer_sizes, first.activation, first.output, first.dtype)
    for k, net in enumerate(nets):
        if (net.layer_sizes, net.activation, net.output, net.dtype) != arch:
            raise ValueError(f"nets[{k}] is {net!r}; every network of a group must be "
                             f"like nets[0], {first!r}")
    return nets


def _sample_weights(sample_weights, n, K, dtype):
    if sample_weights is None:
        return [None] * K
    arr = np.asarray(sample_weights)
    if arr.ndim == 1:
        return [check_sample_weight(arr, n, dtype)] * K
    if arr.ndim != 2 or arr.shape != (K, n):
        raise ValueError(f"sample_weights must have shape ({n},) or ({K}, {n}), got "
                         f"{arr.shape}")
    return [check_sample_weight(row, n, dtype) for row in arr]


def _rows(indices, n, K):
    """``indices`` (None or one index set per model, repeats allowed) as int64 arrays."""
    if indices is None:
        return [None] * K
    out = []
    for k, idx in enumerate(indices):
        a = np.asarray(idx)
        if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
            raise TypeError(f"indices[{k}] must be a 1-D array of integer row numbers")
        if a.size == 0:
            raise ValueError(f"indices[{k}] is empty: a model needs at least one row")
        a = a.astype(np.int64)
        if a.min() < 0 or a.max() >= n:
            raise ValueError(f"indices[{k}] must hold rows of X, in [0, {n})")
        out.append(a)
    return out


def spread_threads(n_threads, n_models):
    """Threads per model when ``n_threads`` train ``n_models``: one each when the models
    are at least as many as the threads (the threads split the models); else the
    leftover threads go to the models' batches, the first models getting one more."""
    if n_models >= n_threads:
        return [1] * n_models
    base, extra = divmod(int(n_threads), n_models)
    return [base + (k < extra) for k in range(n_models)]


def train_many(nets, X, y, epochs=10, batch_size=32, lr=0.01, optimizer="sgd", momentum=0.9,
               l2=0.0, l1=0.0, l1_method="subgradient", dropout=0.0, shuffle=True,
               random_state=None, backend="auto", n_threads=None, parallel="sync",
               X_val=None, y_val=None, callbacks=None, sample_weights=None, indices=None,
               beta1=0.9, beta2=0.999, epsilon=1e-8, thread_mode="auto", states=None,
               train_score=False, n_models=None):
    """Train many networks of one architecture together, each exactly as ``nf.train``
    would train it alone.

    Every model has its own sample order, row weights or rows, dropout seed and
    hyper-parameters, and ends where ``nf.train(net_k, X[indices[k]], y[indices[k]],
    sample_weight=sample_weights[k], random_state=seed_k, lr=lr[k], ...)`` ends: bit
    for bit with one thread per model. The models run their epochs a few at a time in
    one compiled call (Cython backend), on threads that split the models; with fewer
    models than threads the leftover threads go to the models' batches (the threaded
    epoch, where ``thread_mode`` would use it). X is held once, whatever the number of
    models: a bootstrap is an index set or integer weights.

    Parameters
    ----------
    nets : MLP or sequence of MLP
        The networks, trained in place; or one template, copied for every model (each
        copy starts from its weights: pass a list for different initializations).
    X : array-like of shape (n_samples, n_in)
    y : array-like
        As in :func:`nnopt_fast.train`.
    epochs, batch_size, optimizer, l1_method, shuffle, backend, parallel, epsilon,
    thread_mode, train_score
        As in :func:`nnopt_fast.train`, the same for every model.
    lr : float, schedule, or sequence of them (one per model)
        A schedule is copied for every model.
    momentum, l2, l1, beta1, beta2 : float or sequence of float (one per model)
    dropout : float, or sequence with one entry per model
        Each entry a float or one value per hidden layer.
    random_state : None, int, SeedSequence, Generator, or sequence (one per model)
        One seed is spawned into one child per model (``SeedSequence.spawn``); model k
        then equals ``nf.train(..., random_state=child_k)``. A sequence gives each model
        its ``random_state`` as ``nf.train`` takes it.
    n_threads : int >= 1, -1 or None, default=None
        Threads of the whole group (None and -1: every available core).
    X_val, y_val : array-like or None
        Validation data, scored for every model after each of its epochs.
    callbacks : list, list of lists, or None
        One list (each model gets its own deep copy), or one list per model. They run
        on the group's threads.
    sample_weights : array-like of shape (n_samples,) or (n_models, n_samples), or None
        Row weights of all models, or of each (integer counts make a bootstrap).
    indices : sequence of array-like of int, or None
        Each model's rows of X (repeats allowed: a bootstrap's draws).
    states : sequence of ResumeState or path, or None
        One state per model to resume from (``history.state`` of an earlier run).
    n_models : int or None
        The number of models, for a template without per-model arguments.

    Returns
    -------
    Histories
        A list of one :class:`~nnopt_fast.train.History` per model; ``.nets`` holds the
        networks.

    Raises
    ------
    DivergenceError, ValueError
        Once the other models have finished, the error of the first model whose loss
        became non-finite, or which met a batch of zero total weight (it keeps the
        weights of that epoch's start): ``error.model`` is its index, ``error.history``
        its history and ``error.histories`` them all.
    TrainingInterrupted
        Ctrl-C: every model keeps the weights of the start of the epoch it was in;
        ``error.histories`` holds the histories.
    """
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    per_model = {"indices": indices, "states": states}
    for name, value in (("lr", lr), ("momentum", momentum), ("l2", l2), ("l1", l1),
                        ("beta1", beta1), ("beta2", beta2), ("dropout", dropout),
                        ("random_state", random_state)):
        per_model[name] = value if _is_sequence(value) else None
    if sample_weights is not None and np.ndim(sample_weights) == 2:
        per_model["sample_weights"] = sample_weights
    K = _n_models(nets, n_models, per_model)
    nets = _nets(nets, K)
    lrs, states = _per_model(lr, "lr", K), _per_model(states, "states", K)
    hooks = _callbacks(callbacks, K)
    setups = [RunSetup(net, r, h, s, optimizer) for net, r, h, s in zip(nets, lrs, hooks,
                                                                         states)]
    data = check_training_data(nets[0], X, y, X_val=X_val, y_val=y_val)
    n = data.X.shape[0]
    weights = _sample_weights(sample_weights, n, K, nets[0].dtype)
    rows = _rows(indices, n, K)
    be = get_backend(backend)
    total = resolve_n_threads(n_threads)
    shares = spread_threads(total, K)
    hyper = {name: _per_model(value, name, K) for name, value in (
        ("momentum", momentum), ("l2", l2), ("l1", l1), ("beta1", beta1),
        ("beta2", beta2), ("dropout", dropout))}
    runs, members = [], []
    for k, (setup, seed) in enumerate(zip(setups, _seeds(random_state, K))):
        config = dict(batch_size=batch_size, optimizer=optimizer, epsilon=epsilon,
                      l1_method=l1_method, n_threads=shares[k], parallel=parallel,
                      thread_mode=thread_mode, **{h: v[k] for h, v in hyper.items()})
        run = setup.start(data._replace(sw=weights[k]), be, backend, random_state=seed,
                          shuffle=shuffle, train_score=train_score, config=config,
                          rows=rows[k])
        runs.append(run)
        driver = EpochDriver(run.cfg, run.live, n if rows[k] is None else rows[k].size,
                             epochs=epochs, lr=run.schedule, reorder=run.reorder,
                             before_epoch=run.epoch_begin, on_epoch=run.epoch_end,
                             rows=rows[k])
        members.append(Member(driver, data.X, data.T, weights[k]))
    histories = Histories([run.hist for run in runs], nets)
    try:
        for run in runs:
            run.train_begin()
        errors = run_group(be, members, total)
        for run, err in zip(runs, errors):
            if err is None:
                run.train_end()
    except KeyboardInterrupt:
        interrupted = TrainingInterrupted(runs[0].hist)
        interrupted.args = (f"training of {K} models interrupted",)
        interrupted.histories = histories
        raise interrupted from None
    finally:
        for run in runs:
            run.freeze()
    for k, err in enumerate(errors):
        if err is not None:
            err.model, err.history, err.histories = k, runs[k].hist, histories
            err.args = (f"model {k}: {err.args[0]}",)
            raise err
    return histories


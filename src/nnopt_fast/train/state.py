"""Training configuration, the buffers allocated once per ``train`` call, and the state kept
between calls (the estimators' optimizer buffers, ``nf.train``'s resumable state)."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrainConfig:
    """Everything a backend's ``run_epoch`` needs to know besides arrays.

    Attributes
    ----------
    layer_sizes : tuple of int
    activation : str
        Hidden activation name (see ``reference.ACTIVATIONS``).
    output : str
        Output layer name (see ``reference.OUTPUTS``).
    batch_size : int
        Rows per step; the last batch of an epoch may be shorter.
    optimizer : {"sgd", "momentum", "nesterov", "adam"}
    momentum, beta1, beta2, epsilon : float
    l2, l1 : float
        Penalty strengths; the per-step coefficients are ``l2 / d`` and ``l1 / (2 d)``.
    l1_method : {"subgradient", "proximal"}
    penalty_div : float
        ``d`` above: the training-set size m for ``nf.train``'s tutorial convention, or
        0 for scikit-learn's per-batch convention (``d`` = the batch's weight sum).
    dropout : tuple of float
        Drop probability of each hidden layer (length ``len(layer_sizes) - 2``).
    seed : int
        Dropout-mask seed in [0, 2**63).
    n_threads : int
    parallel : {"sync", "hogwild"}
    thread_mode : {"auto", "data", "blas"}
        How a run with ``n_threads > 1`` spends its threads: ``"data"`` runs the
        multithreaded epoch (sync or Hogwild), ``"blas"`` the serial epoch with threaded
        GEMMs, ``"auto"`` lets :func:`nnopt_fast.train.threads.choose_mode` decide by size.
    """

    layer_sizes: tuple
    activation: str = "tanh"
    output: str = "softmax"
    batch_size: int = 32
    optimizer: str = "sgd"
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    l2: float = 0.0
    l1: float = 0.0
    l1_method: str = "subgradient"
    penalty_div: float = 0.0
    dropout: tuple = ()
    seed: int = 0
    n_threads: int = 1
    parallel: str = "sync"
    thread_mode: str = "auto"

    @property
    def n_layers(self):
        return len(self.layer_sizes) - 1


class TrainState:
    """Parameters (shared with the model), gradients, optimizer buffers and counters.

    Allocated once per training run and updated in place by every backend.

    Attributes
    ----------
    params, grads : ndarray of shape (n_params,)
        ``params`` *is* the model's buffer; ``grads`` has the same layout.
    coefs, intercepts, grad_coefs, grad_intercepts : list of ndarray
        Per-layer views into ``params`` and ``grads``.
    offsets : ndarray of shape (n_layers, 2), int64
        Start of ``W_l`` and ``b_l`` inside ``params``.
    velocity : ndarray of shape (n_params,) (momentum / nesterov), else empty
    m, v : ndarray of shape (n_params,) (adam), else empty
    t : int
        Adam updates done so far.
    step : int
        Global batch counter (keys the dropout masks).
    workspace : dict
        Per-backend scratch buffers, allocated by a backend on its first epoch.
    """

    def __init__(self, net, cfg):
        self.net = net
        self.params = net.params
        self.coefs, self.intercepts = net.coefs_, net.intercepts_
        self.grads = np.zeros_like(self.params)
        self.grad_coefs, self.grad_intercepts = net._views(self.grads)
        offs = []
        for W, b in zip(self.coefs, self.intercepts):
            offs.append((_offset(W, self.params), _offset(b, self.params)))
        self.offsets = np.asarray(offs, dtype=np.int64).reshape(-1, 2)
        dt = self.params.dtype
        empty = np.zeros(0, dtype=dt)
        self.velocity = np.zeros_like(self.params) if cfg.optimizer in ("momentum", "nesterov") else empty
        self.m = np.zeros_like(self.params) if cfg.optimizer == "adam" else empty
        self.v = np.zeros_like(self.params) if cfg.optimizer == "adam" else empty
        self.t = 0
        self.step = 0
        self.workspace = {}

    def snapshot(self, into=None):
        """Copies of everything an epoch changes, for :meth:`restore`.

        ``into``, an earlier snapshot of this state, is overwritten and returned instead
        of allocating new copies (an epoch loop then holds one snapshot, not two at the
        moment it takes the next).
        """
        live = (self.params, self.velocity, self.m, self.v)
        if into is not None and all(a.shape == b.shape and a.dtype == b.dtype
                                    for a, b in zip(into, live)):
            for a, b in zip(into, live):
                np.copyto(a, b)
            return into
        return tuple(a.copy() for a in live)

    def restore(self, snap):
        self.params[...], self.velocity[...], self.m[...], self.v[...] = snap


class OptimizerState:
    """Optimizer buffers and learning rate kept between training calls.

    What a :class:`TrainState` loses when its call ends and the next ``partial_fit``,
    warm start or saved file needs to continue exactly: the momentum velocity, Adam's
    moments and step count, and the current learning rate of the schedule.

    Parameters
    ----------
    kind : {"sgd", "momentum", "nesterov", "adam"}
    learning_rate : float

    Attributes
    ----------
    velocity, m, v : ndarray of shape (n_params,) or (0,), or None
        None until :meth:`save_from` first runs.
    t : int
        Adam updates done so far.
    """

    def __init__(self, kind, learning_rate):
        self.kind = kind
        self.learning_rate = float(learning_rate)
        self.velocity = self.m = self.v = None
        self.t = 0

    def load_into(self, state):
        """Copy the saved buffers into a fresh :class:`TrainState` of the same layout."""
        for name in ("velocity", "m", "v"):
            saved = getattr(self, name)
            if saved is not None and saved.shape == getattr(state, name).shape:
                getattr(state, name)[...] = saved
        state.t = self.t

    def save_from(self, state):
        """Keep copies of ``state``'s buffers."""
        self.velocity, self.m, self.v = state.velocity.copy(), state.m.copy(), state.v.copy()
        self.t = state.t


def _offset(view, base):
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize


#: The bit generators a saved shuffling state may name (numpy's own).
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


class ResumeState:
    """What a later ``nf.train`` call needs to continue a run exactly.

    ``history.state`` after a run, or the state inside a checkpoint file. Passed back as
    ``nf.train(net, X, y, ..., state=state)`` (with the same data and arguments), the
    run goes on as if it had never stopped: ``train(2 epochs)`` equals ``train(1 epoch)``
    then ``train(1 epoch, state=...)``, bit for bit.

    Parameters
    ----------
    optimizer : OptimizerState
        Momentum velocity, Adam's moments and update count, the last learning rate.
    dropout_seed : int
        The seed of the dropout masks.
    dropout_step : int
        Mini-batches done: the step number that keys the next dropout mask.
    epoch : int
        Epochs done.
    rng_state : dict
        ``numpy.random.Generator.bit_generator.state`` of the shuffling generator,
        before the next epoch's draw.
    schedule : dict or None
        ``{"class": name, "state": schedule.get_state()}`` of the learning-rate schedule.
    n_params : int
    dtype : str
        The model's parameter count and dtype, checked when the state is used.
    """

    def __init__(self, optimizer, dropout_seed, dropout_step, epoch, rng_state, schedule,
                 n_params, dtype):
        self.optimizer = optimizer
        self.dropout_seed, self.dropout_step = int(dropout_seed), int(dropout_step)
        self.epoch = int(epoch)
        self.rng_state = rng_state
        self.schedule = schedule
        self.n_params, self.dtype = int(n_params), str(dtype)

    @classmethod
    def capture(cls, train_state, cfg, rng_state, epoch, schedule):
        """The state of a run whose live buffers are ``train_state`` (copied)."""
        opt = OptimizerState(cfg.optimizer, schedule.rate)
        opt.save_from(train_state)
        saved = {"class": type(schedule).__name__, "state": dict(schedule.get_state())}
        return cls(opt, cfg.seed, train_state.step, epoch, _copy_rng_state(rng_state),
                   saved, train_state.params.size, train_state.params.dtype.name)

    def check(self, net, optimizer, name="state"):
        """Raise ValueError unless this state can continue training ``net`` with ``optimizer``."""
        if self.n_params != net.n_params or self.dtype != net.dtype.name:
            raise ValueError(f"{name} belongs to a model of {self.n_params} {self.dtype} "
                             f"parameters; this one has {net.n_params} {net.dtype.name}")
        if self.optimizer.kind != optimizer:
            raise ValueError(f"{name} was saved by optimizer {self.optimizer.kind!r}; pass "
                             f"optimizer={self.optimizer.kind!r} to continue it")
        if self.rng_state.get("bit_generator") not in BIT_GENERATORS:
            raise ValueError(f"{name} names an unknown bit generator "
                             f"{self.rng_state.get('bit_generator')!r}")

    def load_into(self, train_state):
        """Copy the optimizer buffers and counters into a fresh :class:`TrainState`."""
        self.optimizer.load_into(train_state)
        train_state.step = self.dropout_step

    def make_rng(self):
        """A new generator that draws what the run's generator would draw next."""
        bit_generator = getattr(np.random, self.rng_state["bit_generator"])()
        bit_generator.state = _copy_rng_state(self.rng_state)
        return np.random.Generator(bit_generator)

    def __repr__(self):
        return (f"ResumeState({self.epoch} epochs, optimizer {self.optimizer.kind!r}, "
                f"{self.dropout_step} steps)")


def _copy_rng_state(state):
    """A deep copy of a bit generator's state (nested dicts of ints, strings and arrays)."""
    return {k: _copy_rng_state(v) if isinstance(v, dict)
            else v.copy() if isinstance(v, np.ndarray) else v for k, v in state.items()}

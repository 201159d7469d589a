"""``nf.train``: the epoch driver with validation, schedules, callbacks, resuming and progress."""

import contextlib
import copy
import os

import numpy as np

from .._validation import check_scalar
from ..kernels import get_backend
from .callbacks import as_callbacks
from .history import History
from .inputs import check_training_data
from .loop import DivergenceError, make_config, run_epochs, score
from .progress import progress
from .schedules import Constant, is_schedule
from .state import ResumeState, TrainState

__all__ = ["train", "TrainingInterrupted", "RunSetup", "check_net"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped ``nf.train``; a ``KeyboardInterrupt`` that keeps the run.

    The network holds the weights of the start of the interrupted epoch (or, when the
    interrupt came between epochs, of the end of the last one): finite, and those
    ``history.state`` continues from.

    Attributes
    ----------
    history : History
        The epochs completed, with ``history.state`` to resume the run.
    """

    def __init__(self, history):
        self.history = history
        super().__init__(f"training interrupted after {history.epochs} epochs")


def _check_lr(lr):
    """A private copy of the schedule ``lr``, or a :class:`Constant` of the rate ``lr``."""
    if is_schedule(lr):
        return copy.deepcopy(lr)
    return Constant(check_scalar(lr, "lr", low=0.0, low_open=True))


def _resume_from(state, net, optimizer):
    """The :class:`ResumeState` of ``state`` (a state or a checkpoint path), checked."""
    if state is None:
        return None
    if isinstance(state, (str, os.PathLike)):
        from .checkpoint import load_checkpoint

        saved = load_checkpoint(state)
        if (saved.net.layer_sizes, saved.net.activation, saved.net.output) != (
                net.layer_sizes, net.activation, net.output):
            raise ValueError(f"state: the checkpoint {os.fspath(state)} holds {saved.net!r}, "
                             f"not a model like {net!r}")
        if saved.state is None:
            raise ValueError(f"state: the checkpoint {os.fspath(state)} holds weights but "
                             f"no training state")
        saved.state.check(net, optimizer)
        net.params[...] = saved.net.params
        return saved.state
    if not isinstance(state, ResumeState):
        raise TypeError(f"state must be a ResumeState (history.state) or a checkpoint path, "
                        f"got {type(state).__name__}")
    state.check(net, optimizer)
    return state


def train(net, X, y, epochs=10, batch_size=32, lr=0.01, optimizer="sgd", momentum=0.9,
          l2=0.0, l1=0.0, l1_method="subgradient", dropout=0.0, shuffle=True,
          random_state=None, backend="auto", n_threads=None, parallel="sync", X_val=None,
          y_val=None, callbacks=None, verbose=False, sample_weight=None, beta1=0.9,
          beta2=0.999, epsilon=1e-8, thread_mode="auto", class_weight=None,
          validation_split=None, state=None, train_score=False):
    """Train ``net`` in place by mini-batch gradient descent and return its history.

    Parameters
    ----------
    net : MLP
    X : array-like or SciPy sparse matrix of shape (n_samples, n_in)
        Copied to the model's dtype and C order when needed; never modified. A sparse X
        trains without being densified (the first layer multiplies its non-zeros).
    y : array-like
        Integer labels 0..K-1 (softmax output), 0/1 targets of shape (n,) or (n, K)
        (logistic output), or values of shape (n,) or (n, K) (identity output). Labels
        of other kinds (strings, 1..K) are refused: ``nf.MLPClassifier`` encodes them.
    epochs : int >= 1
    batch_size : int >= 1 or None
        ``None`` is batch gradient descent (one step per epoch over all of X),
        ``1`` is stochastic gradient descent, anything between is mini-batch.
    lr : float > 0 or schedule
        The learning rate sigma, or a schedule of :mod:`nnopt_fast.train.schedules`
        (``StepDecay``, ``ExponentialDecay``, ``CosineDecay``, ``ReduceOnPlateau``,
        ``InverseScaling``, ``Constant``) whose rate every optimizer follows. The
        schedule given is copied, never advanced: the run's copy is in ``history.state``.
    optimizer : {"sgd", "momentum", "nesterov", "adam"}
    momentum : float in [0, 1]
        mu for momentum and Nesterov.
    l2, l1 : float >= 0
        lambda and lambda_1 of the cost ``J = mean L + l2/(2m) sum ||W||^2 + l1/(2m) sum |W|``
        with m = the number of training rows, whatever the batch size.
    l1_method : {"subgradient", "proximal"}
        ``"proximal"`` soft-thresholds after each step and gives exact zeros.
    dropout : float in [0, 1) or sequence of float
        Drop probability p of hidden units (inverted dropout; one value per hidden layer
        allowed). Nothing is dropped at predict time.
    shuffle : bool
        Draw a new sample order every epoch.
    random_state : int, numpy Generator or None
        Seeds the shuffling and the dropout masks (ignored when ``state`` is given,
        which continues them).
    backend : {"auto", "cython", "numba", "numpy"}
    n_threads : int >= 1, -1 or None, default=None
        Threads for the training step. ``None`` and ``-1`` mean every core this process
        may run on (its affinity mask); more than that is clamped to it, with a warning.
        How many of them a run really uses is decided by ``thread_mode``: by default
        small steps keep to one thread, so that more threads never make a run slower
        (``docs/threads.md``).
    parallel : {"sync", "hogwild"}
        With ``n_threads > 1``: deterministic synchronous steps (the same result as one
        thread up to summation order, bit-identical from run to run), or lock-free
        Hogwild.
    X_val, y_val : array-like or None
        Validation data; fills ``val_loss`` and ``val_score`` of the history.
    callbacks : list or None
        Objects with the hooks of :mod:`nnopt_fast.train.callbacks` (``on_train_begin``,
        ``on_epoch_begin``, ``on_epoch_end``, ``on_train_end``: ``EarlyStopping``,
        ``ModelCheckpoint``, ``LambdaCallback``, subclasses of ``Callback``), or plain
        functions ``cb(net, history)``, called after every epoch. A true return value
        of ``on_epoch_end`` (or of a function) stops training after that epoch.
    verbose : bool
        Show a progress bar (tqdm) on a terminal, or a line per epoch otherwise.
    sample_weight : array-like of shape (n_samples,) or None
    beta1, beta2, epsilon : float
        Adam's hyper-parameters.
    thread_mode : {"auto", "data", "blas"}
        How a run with ``n_threads > 1`` uses its threads: ``"data"`` runs the
        multithreaded epoch (sync: each batch split among the threads; Hogwild: the
        threads take turns at the batches), ``"blas"`` the one-thread epoch with
        multithreaded GEMMs, ``"auto"`` picks by the size of a step (see
        ``docs/threads.md``). Ignored with one thread.
    class_weight : None, "balanced" or dict
        Weights of the classes 0..K-1 of a softmax output (or 0/1 of a single logistic
        output), multiplied into ``sample_weight``: a dict maps a class to its weight
        (absent classes weigh 1), ``"balanced"`` weighs class k by
        ``n_train / (n_classes_present * count_k)`` over the training rows. Training with
        ``class_weight`` equals, bit for bit, training with the product as
        ``sample_weight``.
    validation_split : float in (0, 1) or None
        Hold out this fraction of (X, y) as validation data, before any shuffling and
        without randomness. Classes (softmax, single logistic output) are split per
        class, stratified: the last ``round(f * n_k)`` rows of each class k (at least one
        row of every class stays for training). Other targets: the last ``round(f * n)``
        rows. Shuffle the data first if its order means something. Not with X_val.
    state : ResumeState, str, os.PathLike or None
        Continue a run exactly: ``history.state`` of an earlier call, or the path of a
        checkpoint file (``ModelCheckpoint``, ``nf.save_checkpoint``), whose weights are
        then copied into ``net``. The optimizer buffers (velocity, Adam's moments and
        step count), the dropout step and seed, the shuffling generator, the epoch count
        and a schedule of the same class continue from it; with the same data and
        arguments, ``train(2 epochs)`` equals ``train(1)`` then ``train(1, state=...)``,
        bit for bit.
    train_score : bool, default=False
        Also record ``score``: accuracy or R^2 on the training rows after each epoch
        (one more forward pass over them per epoch).

    Returns
    -------
    History
        ``history.history`` holds one list per record (loss, val_loss, val_score, lr,
        epoch_time, score), ``history.state`` the state to resume from.

    Raises
    ------
    DivergenceError
        When the loss becomes non-finite; ``net`` keeps its weights from the start of
        the failing epoch, and the error's ``history`` the epochs before it.
    ValueError
        When the sample weights of a mini-batch sum to 0 (its mean loss is undefined);
        ``net`` keeps its weights from the start of that epoch.
    TrainingInterrupted
        A ``KeyboardInterrupt`` (Ctrl-C, SIGINT) during training: the compiled epochs
        notice it within a batch. ``net`` keeps the finite weights of the start of the
        interrupted epoch; the exception's ``history`` holds the epochs completed and
        ``history.state`` resumes from there. Callbacks' ``on_train_end`` is not called.
    """
    check_net(net)
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    setup = RunSetup(net, lr, callbacks, state, optimizer)
    data = check_training_data(net, X, y, sample_weight=sample_weight,
                               class_weight=class_weight, X_val=X_val, y_val=y_val,
                               validation_split=validation_split)
    be = get_backend(backend)
    run = setup.start(data, be, backend, random_state=random_state, shuffle=shuffle,
                      train_score=train_score,
                      config=dict(batch_size=batch_size, optimizer=optimizer,
                                  momentum=momentum, beta1=beta1, beta2=beta2,
                                  epsilon=epsilon, l2=l2, l1=l1, l1_method=l1_method,
                                  dropout=dropout, n_threads=n_threads, parallel=parallel,
                                  thread_mode=thread_mode))
    run.report = progress(epochs, verbose, run.first_epoch + 1)
    with run.training():
        run_epochs(be, run.cfg, run.live, data.X, data.T, data.sw, epochs=epochs,
                   lr=run.schedule, reorder=run.reorder, before_epoch=run.epoch_begin,
                   on_epoch=run.epoch_end)
    return run.hist


def check_net(net, name="net"):
    """Raise TypeError unless ``net`` is an :class:`nnopt_fast.MLP`."""
    from ..model.mlp import MLP

    if not isinstance(net, MLP):
        raise TypeError(f"{name} must be an nnopt_fast.MLP, got {type(net).__name__}")


class RunSetup:
    """The arguments of a run checked before its data: the learning rate (a private
    schedule), the callbacks and the state to resume from."""

    def __init__(self, net, lr, callbacks, state, optimizer):
        self.net = net
        self.schedule = _check_lr(lr)
        self.hooks = as_callbacks(callbacks)
        self.resume = _resume_from(state, net, optimizer)

    def start(self, data, be, backend, *, random_state, shuffle, train_score, config,
              rows=None):
        """The :class:`_Run` of this model on ``data`` (its rows ``rows`` of it, or all),
        with the hyper-parameters ``config`` (:func:`make_config`'s keywords)."""
        net, resume, schedule = self.net, self.resume, self.schedule
        m = data.X.shape[0] if rows is None else len(rows)
        rng = resume.make_rng() if resume is not None else np.random.default_rng(random_state)
        seed = resume.dropout_seed if resume is not None else int(rng.integers(0, 2**63 - 1))
        cfg = make_config(net, n_samples=m, seed=seed, **config)
        live = TrainState(net, cfg)
        if resume is not None:
            resume.load_into(live)
            if (resume.schedule is not None
                    and resume.schedule["class"] == type(schedule).__name__):
                schedule.set_state(resume.schedule["state"])
        keys = ["loss", *(["score"] if train_score else []),
                *(["val_loss", "val_score"] if data.X_val is not None else []), "lr",
                "epoch_time"]
        hist = History(getattr(be, "BACKEND_NAME", backend), keys)
        schedule.train_begin(hist.history)
        run = _Run(net, data, hist, self.hooks, schedule, rng, live, cfg,
                   resume.epoch if resume is not None else 0, shuffle, rows)
        hist._snapshot = run.snapshot
        return run


class _Run:
    """The bookkeeping of one ``nf.train`` call around the epoch driver's hooks."""

    def __init__(self, net, data, hist, hooks, schedule, rng, live, cfg, first_epoch,
                 shuffle, rows=None):
        self.net, self.data, self.hist, self.hooks = net, data, hist, hooks
        self.schedule, self.rng, self.live, self.cfg = schedule, rng, live, cfg
        self.first_epoch, self.shuffle, self.rows = first_epoch, shuffle, rows
        # Epochs the driver started and finished, and the generator's state before the
        # last start's draw: an epoch interrupted in the kernel resumes from that draw.
        self.started = self.finished = 0
        self.rng_before = rng.bit_generator.state
        self.rate = schedule.rate
        self.report = lambda epoch, record: None

    def reorder(self, order):
        self.rng_before = self.rng.bit_generator.state
        self.started += 1
        if self.shuffle:
            return self.rng.permutation(order.size).astype(np.int64, copy=False)
        return order

    def epoch_begin(self, epoch):
        self.rate = self.schedule.rate
        for cb in self.hooks:
            cb.on_epoch_begin(self.first_epoch + epoch, self.net, self.hist)

    def epoch_end(self, epoch, loss, seconds):
        self.finished += 1
        epoch += self.first_epoch
        net, data = self.net, self.data
        record = {"loss": loss, "lr": self.rate, "epoch_time": seconds}
        if "score" in self.hist.history:
            rows = slice(None) if self.rows is None else self.rows
            record["score"] = score(net, data.X[rows], data.T[rows])
        if data.X_val is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                record["val_loss"] = net.loss(data.X_val, data.y_val)
                record["val_score"] = score(net, data.X_val, data.y_val)
        self.hist.append(epoch, record)
        self.report(epoch, record)
        self.schedule.observe(record)
        stop = False
        for cb in self.hooks:
            stop = bool(cb.on_epoch_end(epoch, net, self.hist)) or stop
        if stop:
            self.hist.stopped_epoch = epoch
        return stop

    def snapshot(self):
        """The resumable state now: after the last finished epoch (or before the first)."""
        interrupted = self.started > self.finished
        rng_state = self.rng_before if interrupted else self.rng.bit_generator.state
        return ResumeState.capture(self.live, self.cfg, rng_state,
                                   self.first_epoch + self.finished, self.schedule)

    @contextlib.contextmanager
    def training(self):
        """The callbacks' ``on_train_begin`` and ``on_train_end`` around the epochs; on
        the way out, also on errors, the final state goes into the history and the
        reporter closes. A Ctrl-C becomes :class:`TrainingInterrupted`, a divergence's
        error gets the history."""
        try:
            self.train_begin()
            yield self
            self.train_end()
        except KeyboardInterrupt:
            self.freeze()
            raise TrainingInterrupted(self.hist) from None
        except DivergenceError as err:
            self.freeze()
            err.history = self.hist
            raise
        finally:
            self.report(None, None)
            self.freeze()

    def train_begin(self):
        for cb in self.hooks:
            cb.on_train_begin(self.net, self.hist)

    def train_end(self):
        for cb in self.hooks:
            cb.on_train_end(self.net, self.hist)

    def freeze(self):
        """Keep the final state in the history and stop following the live run."""
        if self.hist._snapshot is not None:
            self.hist._state = self.snapshot()
            self.hist._snapshot = None

"""The one epoch driver around a backend's compiled ``run_epoch``, and its configuration."""

import contextlib
import signal
import threading
import time

import numpy as np

from .._validation import check_choice, check_scalar
from ..kernels import reference as ref
from .schedules import Constant, is_schedule
from .state import TrainConfig
from .threads import resolve_n_threads, thread_budget


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss.

    The model keeps the weights it had at the start of the failing epoch.

    Attributes
    ----------
    epoch : int
        The 1-based epoch whose loss became non-finite.
    lr : float
        The learning rate of that epoch.
    loss : float or None
        The epoch's (non-finite, or finite with non-finite weights) loss.
    """

    def __init__(self, epoch, lr, lr_name="lr", loss=None):
        self.epoch = epoch
        self.lr = lr
        self.loss = loss
        super().__init__(
            f"training diverged in epoch {epoch}: the loss became NaN or infinite at "
            f"{lr_name}={lr:g}. The model keeps its weights from the start of that epoch; "
            f"try a smaller learning rate (e.g. {lr_name}={lr / 10:g})."
        )


def score(net, X, y):
    """Accuracy (softmax / logistic outputs) or R^2 (identity output) of ``net`` on (X, y)."""
    pred = net.predict(X)
    if net.output == "identity":
        Y = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
        P = np.asarray(pred, dtype=np.float64).reshape(len(X), -1)
        ss_res = ((Y - P) ** 2).sum(axis=0)
        ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 0.0)
        return float(r2.mean())
    y = np.asarray(y)
    if net.output == "logistic":
        return float(np.mean(np.all(np.asarray(pred).reshape(y.shape) == y.reshape(y.shape),
                                    axis=tuple(range(1, y.ndim)))))
    return float(np.mean(pred == y))


def _check_n_threads(n_threads):
    return resolve_n_threads(n_threads)


def _check_dropout(dropout, n_hidden):
    if np.ndim(dropout) == 0:
        p = check_scalar(dropout, "dropout", low=0.0, high=1.0, high_open=True)
        return (p,) * n_hidden
    ps = tuple(dropout)
    if len(ps) != n_hidden:
        raise ValueError(f"dropout must be a float or one value per hidden layer "
                         f"({n_hidden}), got {len(ps)} values")
    return tuple(check_scalar(p, "dropout", low=0.0, high=1.0, high_open=True) for p in ps)


def make_config(net, *, batch_size, n_samples, optimizer="sgd", momentum=0.9, beta1=0.9,
                beta2=0.999, epsilon=1e-8, l2=0.0, l1=0.0, l1_method="subgradient",
                penalty_div=None, dropout=0.0, seed=0, n_threads=1, parallel="sync",
                thread_mode="auto"):
    """Validate hyper-parameters and build a :class:`TrainConfig` for ``net``.

    ``batch_size=None`` means the whole training set; a batch larger than the training set
    is clipped to it. ``penalty_div=None`` means the tutorial's convention (m = n_samples).
    """
    if batch_size is None:
        B = n_samples
    else:
        B = check_scalar(batch_size, "batch_size", kind="int", low=1)
        B = min(B, n_samples)
    check_choice(optimizer, "optimizer", ref.OPTIMIZERS)
    check_choice(l1_method, "l1_method", ("subgradient", "proximal"))
    check_choice(parallel, "parallel", ("sync", "hogwild"))
    check_choice(thread_mode, "thread_mode", ("auto", "data", "blas"))
    momentum = check_scalar(momentum, "momentum", low=0.0, high=1.0)
    beta1 = check_scalar(beta1, "beta1", low=0.0, high=1.0, high_open=True)
    beta2 = check_scalar(beta2, "beta2", low=0.0, high=1.0, high_open=True)
    epsilon = check_scalar(epsilon, "epsilon", low=0.0, low_open=True)
    l2 = check_scalar(l2, "l2", low=0.0)
    l1 = check_scalar(l1, "l1", low=0.0)
    return TrainConfig(
        layer_sizes=net.layer_sizes, activation=net.activation, output=net.output,
        batch_size=B, optimizer=optimizer, momentum=momentum, beta1=beta1, beta2=beta2,
        epsilon=epsilon, l2=l2, l1=l1, l1_method=l1_method,
        penalty_div=float(n_samples if penalty_div is None else penalty_div),
        dropout=_check_dropout(dropout, net.n_layers - 1), seed=int(seed),
        n_threads=_check_n_threads(n_threads), parallel=parallel, thread_mode=thread_mode,
    )


def zero_weight_error(err, epoch):
    """The ValueError for a mini-batch whose sample weights sum to 0 (``err`` from a
    backend's ``run_epoch``): its mean loss, hence its step, is undefined."""
    return ValueError(f"sample_weight: in epoch {epoch}, {err}; its mean loss is undefined. "
                      "Use larger batches, or fewer zero weights.")


class EpochDriver:
    """One model's epochs around its backend's ``run_epoch``: the per-epoch logic of the
    epoch driver, which :func:`run_epochs` runs for one model and
    :func:`nnopt_fast.train.group.run_group` for many at once.

    An epoch is :meth:`start` (its sample order and rate), the backend's epoch, then
    :meth:`finish` with what the epoch returned, or :meth:`abort` if it raised. The
    parameters are those of :func:`run_epochs`, with ``n_samples`` the rows per epoch
    and ``rows`` the model's rows of X (an index set, repeats allowed; None: all of X):
    ``order`` then indexes ``rows``, and the epoch runs on ``rows[order]``.

    Attributes
    ----------
    epoch : int
        Epochs started.
    losses : list of float
        The loss of every epoch finished.
    done : bool
        Whether training is over (every epoch run, or a stop).
    """

    def __init__(self, cfg, state, n_samples, *, epochs, lr, rng=None, shuffle=True,
                 on_epoch=None, reorder=None, stopping=None, data_div=1.0,
                 before_epoch=None, rows=None):
        self.cfg, self.state, self.m, self.epochs = cfg, state, int(n_samples), epochs
        self.schedule = lr if is_schedule(lr) else Constant(lr)
        if reorder is None:
            m = self.m
            if shuffle:
                def reorder(order):
                    return rng.permutation(m).astype(np.int64)
            else:
                def reorder(order):
                    return order
        self.reorder, self.on_epoch, self.stopping = reorder, on_epoch, stopping
        self.data_div, self.before_epoch, self.rows = data_div, before_epoch, rows
        self.order = np.arange(self.m, dtype=np.int64)
        self.epoch, self.losses, self.stopped = 0, [], False
        self.rate = self._snap = None

    @property
    def done(self):
        return self.stopped or self.epoch >= self.epochs

    def start(self):
        """Begin the next epoch: ``(perm, rate)``, the rows of X it runs in order and
        its learning rate."""
        self.epoch += 1
        if self.before_epoch is not None:
            self.before_epoch(self.epoch)
        self.order = self.reorder(self.order)
        self._snap = self.state.snapshot(into=self._snap)
        self.rate = self.schedule.rate
        return (self.order if self.rows is None else self.rows[self.order]), self.rate

    def abort(self, err=None):
        """The epoch raised ``err`` (or was interrupted): restore the state of its start;
        returns the error to raise (a ZeroDivisionError becomes the ValueError of
        :func:`zero_weight_error`)."""
        self.state.restore(self._snap)
        self.stopped = True
        if isinstance(err, ZeroDivisionError):
            return zero_weight_error(err, self.epoch)
        return err

    def finish(self, out, seconds):
        """End the epoch that returned ``out`` (``run_epoch``'s ``(data_loss, penalty,
        n_steps, status)``) in ``seconds``: record its loss, step the schedule, call
        ``on_epoch`` and the stopping rule. Returns :attr:`done`.

        Raises
        ------
        DivergenceError
            Non-finite loss or weights, after restoring the state of the epoch's start.
        """
        data, pen, n_steps, status = out[:4]
        state, m = self.state, self.m
        with np.errstate(over="ignore", invalid="ignore"):
            loss = (data / self.data_div + pen) / m
        if status != 0 or not np.isfinite(loss) or not np.isfinite(state.params).all():
            state.restore(self._snap)
            self.stopped = True
            # A kernel that stops at a divergence returns partial sums, not a loss.
            raise DivergenceError(self.epoch, self.rate,
                                  loss=loss if status == 0 else np.nan)
        state.step += n_steps
        state.t += n_steps
        self.losses.append(loss)
        self.schedule.epoch_end(m)
        stop = self.on_epoch is not None and self.on_epoch(self.epoch, loss, seconds)
        stopping = self.stopping
        if stopping is not None:
            stopping.update(loss)
        if stopping is not None and stopping.exhausted and stopping.settle(self.schedule):
            stop = True
        self.stopped = bool(stop)
        return self.done


def run_epochs(backend, cfg, state, X, T, sw, *, epochs, lr, rng=None, shuffle=True,
               on_epoch=None, reorder=None, stopping=None, data_div=1.0, before_epoch=None):
    """Run up to ``epochs`` epochs of ``backend``: the one epoch driver.

    Parameters
    ----------
    backend : module
        A backend of :func:`nnopt_fast.kernels.get_backend`.
    cfg : TrainConfig
    state : TrainState
    X, T, sw : ndarray
        Inputs, kernel targets and sample weights (or None), as ``run_epoch`` takes them.
    epochs : int
    lr : float or schedule
        A constant rate, or a schedule of :mod:`nnopt_fast.train.schedules`: its ``rate``
        is read before every epoch and ``epoch_end(n_samples)`` called after it, before
        ``on_epoch``.
    rng : numpy.random.Generator or None
        Draws each epoch's sample order when ``shuffle`` is true and ``reorder`` is None.
    shuffle : bool
    on_epoch : callable or None
        ``on_epoch(epoch, loss, seconds)`` after every epoch; a true return value stops
        training after that epoch.
    reorder : callable or None
        ``reorder(order) -> order``: the next epoch's sample order (int64) from the last
        one, replacing ``rng``'s draws.
    stopping : NoImprovement or None
        A stopping rule, updated after ``on_epoch`` with the epoch's loss; at a plateau it
        asks the schedule whether to stop.
    data_div : float
        The epoch's loss is ``(data / data_div + penalty) / n_samples``.
    before_epoch : callable or None
        ``before_epoch(epoch)`` before every epoch (1-based), before its sample order is
        drawn and its rate read.

    Returns
    -------
    list of float
        The loss of every epoch run.

    Raises
    ------
    DivergenceError
        Non-finite loss or weights, after restoring the state of the start of the epoch.
    ValueError
        A mini-batch whose sample weights sum to 0; the state is restored likewise.
    KeyboardInterrupt
        Also after restoring the state of the start of the interrupted epoch.
    """
    driver = EpochDriver(cfg, state, X.shape[0], epochs=epochs, lr=lr, rng=rng,
                         shuffle=shuffle, on_epoch=on_epoch, reorder=reorder,
                         stopping=stopping, data_div=data_div, before_epoch=before_epoch)
    return run_driver(backend, driver, X, T, sw)


def run_driver(backend, driver, X, T, sw):
    """Run the epochs of ``driver`` (an :class:`EpochDriver`) on ``backend`` to their end,
    in this thread; returns their losses. See :func:`run_epochs`."""
    state = driver.state
    # BLAS, OpenMP and Numba threads for this run; restored on exit, also on errors.
    with thread_budget(driver.cfg, backend, driver.m) as cfg:
        while not driver.done:
            perm, rate = driver.start()
            t0 = time.perf_counter()
            # Overflow on the way to a divergence is reported once, by DivergenceError below.
            recorded = False
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    out = backend.run_epoch(cfg, state, X, T, sw, perm, rate, state.step)
                seconds = time.perf_counter() - t0
                # The epoch's bookkeeping (counters, history, callbacks) is not cut short
                # by a Ctrl-C: one arriving meanwhile is raised once it is recorded.
                with _sigint_deferred():
                    driver.finish(out, seconds)
                    recorded = True
            except ZeroDivisionError as err:
                raise driver.abort(err) from err
            except KeyboardInterrupt:
                if not recorded:  # the kernel was interrupted, or had just returned
                    driver.abort()
                raise
    return driver.losses


@contextlib.contextmanager
def _sigint_deferred():
    """Hold back SIGINT for the block (main thread only; elsewhere Python delivers none):
    a signal that arrives meanwhile goes to the previous handler when the block ends
    without an error (Python's default raises KeyboardInterrupt there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    except ValueError:  # no signal handling in this interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, caught[0])

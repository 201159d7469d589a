"""``nf.train``: the epoch loop around a backend's compiled ``run_epoch``."""

import sys
import time

import numpy as np

from .._validation import (
    check_choice,
    check_class_weight,
    check_sample_weight,
    check_scalar,
    check_targets,
    check_X,
    weigh_samples,
)
from ..kernels import get_backend
from ..kernels import reference as ref
from .schedules import Constant, is_schedule
from .state import TrainConfig, TrainState
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


class History:
    """Per-epoch record of a training run.

    Attributes
    ----------
    loss : list of float
        Training cost of each epoch: the sample-weighted mean of the batch losses
        (data term plus penalty, each batch's penalty taken before its update).
    val_loss : list of float
        Data loss on ``(X_val, y_val)`` after each epoch (empty without validation data).
    val_score : list of float
        Accuracy (softmax / logistic) or R^2 (identity) on the validation data.
    epoch_time : list of float
        Seconds spent in each epoch's training pass.
    backend : str
        The backend that ran the epochs.
    """

    def __init__(self, backend):
        self.loss, self.val_loss, self.val_score, self.epoch_time = [], [], [], []
        self.backend = backend

    @property
    def epochs(self):
        return len(self.loss)

    def __repr__(self):
        last = f", last loss {self.loss[-1]:.6g}" if self.loss else ""
        return f"History({self.epochs} epochs on {self.backend!r}{last})"


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


def run_epochs(backend, cfg, state, X, T, sw, *, epochs, lr, rng=None, shuffle=True,
               on_epoch=None, reorder=None, stopping=None, data_div=1.0):
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
        is read before every epoch and ``epoch_end(n_samples)`` called after it.
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
    m = X.shape[0]
    schedule = lr if is_schedule(lr) else Constant(lr)
    if reorder is None:
        if shuffle:
            def reorder(order):
                return rng.permutation(m).astype(np.int64)
        else:
            def reorder(order):
                return order
    order = np.arange(m, dtype=np.int64)
    losses = []
    # BLAS, OpenMP and Numba threads for this run; restored on exit, also on errors.
    with thread_budget(cfg, backend, m) as cfg:
        for epoch in range(1, epochs + 1):
            order = reorder(order)
            snap = state.snapshot()
            rate = schedule.rate
            t0 = time.perf_counter()
            # Overflow on the way to a divergence is reported once, by DivergenceError below.
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    data, pen, n_steps, status = backend.run_epoch(cfg, state, X, T, sw, order,
                                                                   rate, state.step)
            except ZeroDivisionError as err:
                state.restore(snap)
                raise zero_weight_error(err, epoch) from err
            except KeyboardInterrupt:
                state.restore(snap)
                raise
            secs = time.perf_counter() - t0
            with np.errstate(over="ignore", invalid="ignore"):
                loss = (data / data_div + pen) / m
            if status != 0 or not np.isfinite(loss) or not np.isfinite(state.params).all():
                state.restore(snap)
                # A kernel that stops at a divergence returns partial sums, not a loss.
                raise DivergenceError(epoch, rate, loss=loss if status == 0 else np.nan)
            state.step += n_steps
            state.t += n_steps
            losses.append(loss)
            stop = on_epoch is not None and on_epoch(epoch, loss, secs)
            if stopping is not None:
                stopping.update(loss)
            schedule.epoch_end(m)
            if stopping is not None and stopping.exhausted and stopping.settle(schedule):
                stop = True
            if stop:
                break
    return losses


def train(net, X, y, epochs=10, batch_size=32, lr=0.01, optimizer="sgd", momentum=0.9,
          l2=0.0, l1=0.0, l1_method="subgradient", dropout=0.0, shuffle=True,
          random_state=None, backend="auto", n_threads=None, parallel="sync", X_val=None,
          y_val=None, callbacks=None, verbose=False, sample_weight=None, beta1=0.9,
          beta2=0.999, epsilon=1e-8, thread_mode="auto", class_weight=None):
    """Train ``net`` in place by mini-batch gradient descent and return its history.

    Parameters
    ----------
    net : MLP
    X : array-like of shape (n_samples, n_in)
        Copied to the model's dtype and C order when needed; never modified.
    y : array-like
        Integer labels 0..K-1 (softmax output), 0/1 targets of shape (n,) or (n, K)
        (logistic output), or values of shape (n,) or (n, K) (identity output).
    epochs : int >= 1
    batch_size : int >= 1 or None
        ``None`` is batch gradient descent (one step per epoch over all of X),
        ``1`` is stochastic gradient descent, anything between is mini-batch.
    lr : float > 0
        The learning rate sigma.
    optimizer : {"sgd", "momentum", "nesterov", "adam"}
    momentum : float in [0, 1]
        mu for momentum and Nesterov.
    l2, l1 : float >= 0
        lambda and lambda_1 of the cost ``J = mean L + l2/(2m) sum ||W||^2 + l1/(2m) sum |W|``
        with m = len(X), whatever the batch size.
    l1_method : {"subgradient", "proximal"}
        ``"proximal"`` soft-thresholds after each step and gives exact zeros.
    dropout : float in [0, 1) or sequence of float
        Drop probability p of hidden units (inverted dropout; one value per hidden layer
        allowed). Nothing is dropped at predict time.
    shuffle : bool
        Draw a new sample order every epoch.
    random_state : int, numpy Generator or None
        Seeds the shuffling and the dropout masks.
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
    callbacks : list of callable or None
        Each is called as ``cb(net, history)`` after every epoch; a true return value
        stops training early.
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
        ``n_samples / (n_classes_present * count_k)``. Training with ``class_weight``
        equals, bit for bit, training with the product as ``sample_weight``.

    Returns
    -------
    History

    Raises
    ------
    DivergenceError
        When the loss becomes non-finite; ``net`` keeps its weights from the start of
        the failing epoch.
    ValueError
        When the sample weights of a mini-batch sum to 0 (its mean loss is undefined);
        ``net`` keeps its weights from the start of that epoch.
    """
    from ..model.mlp import MLP

    if not isinstance(net, MLP):
        raise TypeError(f"net must be an nnopt_fast.MLP, got {type(net).__name__}")
    epochs = check_scalar(epochs, "epochs", kind="int", low=1)
    lr = check_scalar(lr, "lr", low=0.0, low_open=True)
    if callbacks is not None and not all(callable(c) for c in callbacks):
        raise TypeError("callbacks must be a list of callables")
    Xc = check_X(X, net.dtype, n_features=net.layer_sizes[0])
    m = Xc.shape[0]
    if m == 0:
        raise ValueError("X must have at least one sample")
    T = check_targets(y, net.output, net.layer_sizes[-1], m, net.dtype)
    sw = _sample_weights(net, T, sample_weight, class_weight, m)
    have_val = X_val is not None or y_val is not None
    if have_val:
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be given together")
        Xv = check_X(X_val, net.dtype, name="X_val", n_features=net.layer_sizes[0])
        check_targets(y_val, net.output, net.layer_sizes[-1], Xv.shape[0], net.dtype, "y_val")
    rng = np.random.default_rng(random_state)
    seed = int(rng.integers(0, 2**63 - 1))
    cfg = make_config(net, batch_size=batch_size, n_samples=m, optimizer=optimizer,
                      momentum=momentum, beta1=beta1, beta2=beta2, epsilon=epsilon, l2=l2,
                      l1=l1, l1_method=l1_method, dropout=dropout, seed=seed,
                      n_threads=n_threads, parallel=parallel, thread_mode=thread_mode)
    be = get_backend(backend)
    state = TrainState(net, cfg)
    hist = History(getattr(be, "BACKEND_NAME", backend))
    bar = _progress(epochs, verbose)

    def on_epoch(epoch, loss, secs):
        hist.loss.append(loss)
        hist.epoch_time.append(secs)
        msg = {"loss": f"{loss:.4f}"}
        if have_val:
            hist.val_loss.append(net.loss(Xv, y_val))
            hist.val_score.append(score(net, Xv, y_val))
            msg["val_loss"] = f"{hist.val_loss[-1]:.4f}"
            msg["val_score"] = f"{hist.val_score[-1]:.4f}"
        bar(epoch, msg)
        stop = False
        for cb in callbacks or ():
            stop = bool(cb(net, hist)) or stop
        return stop

    try:
        run_epochs(be, cfg, state, Xc, T, sw, epochs=epochs, lr=lr, rng=rng, shuffle=shuffle,
                   on_epoch=on_epoch)
    finally:
        bar(None, None)
    return hist


def _sample_weights(net, T, sample_weight, class_weight, m):
    """``sample_weight`` times the class weights of the targets T, in the model's dtype."""
    if class_weight is None:
        return check_sample_weight(sample_weight, m, net.dtype)
    n_out = net.layer_sizes[-1]
    if net.output == "softmax":
        labels, n_classes = T, n_out
    elif net.output == "logistic" and n_out == 1:
        labels, n_classes = T[:, 0].astype(np.int64), 2
    else:
        raise ValueError(f"class_weight needs a softmax output or a single logistic output "
                         f"(labels 0..K-1); this model has a {net.output!r} output of "
                         f"{n_out} units")
    weights = check_class_weight(class_weight, labels, range(n_classes))
    return weigh_samples(sample_weight, weights, labels, m, net.dtype)


def _progress(total, verbose):
    """A per-epoch reporter: tqdm on a terminal, plain lines otherwise, nothing if quiet."""
    if not verbose:
        return lambda epoch, msg: None
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        pbar = tqdm(total=total, unit="epoch", leave=True)

        def report(epoch, msg):
            if epoch is None:
                pbar.close()
                return
            pbar.set_postfix(msg, refresh=False)
            pbar.update(1)

        return report

    def report(epoch, msg):
        if epoch is not None:
            body = " ".join(f"{k}={v}" for k, v in msg.items())
            print(f"epoch {epoch}/{total} {body}", file=sys.stderr, flush=True)

    return report

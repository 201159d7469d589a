"""Learning-rate schedules and the no-improvement stopping rule of the epoch driver.

A schedule is an object the epoch driver asks for the rate of every epoch:

- ``rate``: the learning rate of the next epoch, read before it starts;
- ``epoch_end(n_samples)``: called after every epoch of ``n_samples`` samples;
- ``observe(logs)``: called by ``nf.train`` just before ``epoch_end``, with the epoch's
  record (``{"loss": ..., "val_loss": ...}``); only :class:`ReduceOnPlateau` uses it;
- ``train_begin(keys)``: called by ``nf.train`` before the first epoch with the records
  the run keeps (``"loss"``, ``"val_loss"``, ...);
- ``plateau()``: the estimators' no-improvement rule asks what to do at a plateau;
- ``get_state()`` / ``set_state(state)``: the counters a resumed run continues from.

Every optimizer takes every schedule: the rate multiplies the step (Adam's too).
"""

import math

import numpy as np

from .._validation import check_scalar
from .monitor import Monitor

__all__ = ["Schedule", "Constant", "InverseScaling", "Adaptive", "StepDecay",
           "ExponentialDecay", "CosineDecay", "ReduceOnPlateau", "make_schedule",
           "NoImprovement", "SCHEDULES"]

#: ``"adaptive"`` divides the rate by this at every plateau ...
ADAPTIVE_DIVISOR = 5.0
#: ... and stops at a plateau once the rate is at or below this (scikit-learn's rule).
ADAPTIVE_MIN_RATE = 1e-6


class Schedule:
    """The schedule protocol's default hooks (see the module docstring)."""

    def train_begin(self, keys):
        """Hear which records (``"loss"``, ``"val_loss"``, ...) the run keeps."""

    def observe(self, logs):
        """Hear the record of the epoch that just ended (a dict of floats)."""

    def epoch_end(self, n_samples):
        """Hear that an epoch over ``n_samples`` samples has finished."""

    def plateau(self):
        """React to a plateau of the stopping rule.

        Returns
        -------
        stop : bool
            True to stop training, False to go on (the schedule changed the rate).
        note : str
            What happened, completing the stopping rule's sentence.
        """
        return True, " Stopping."

    #: The attributes that change while training, saved and restored for a resumed run.
    _STATE = ()

    def get_state(self):
        """The counters that change while training, as a dict of numbers and strings."""
        return {name: getattr(self, name) for name in self._STATE}

    def set_state(self, state):
        """Continue from counters saved by :meth:`get_state` (of the same class)."""
        for name in self._STATE:
            setattr(self, name, state[name])

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                         if not k.startswith("_") and not isinstance(v, Monitor))
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """The same learning rate every epoch; a plateau stops training.

    Parameters
    ----------
    rate : float > 0
        The rate of every epoch (``rate`` is read by the driver before each epoch).
    """

    def __init__(self, rate):
        self.rate = float(rate)


class InverseScaling(Constant):
    """``rate = rate_init / (samples_seen + 1) ** power_t``, updated after every epoch.

    scikit-learn's ``learning_rate="invscaling"``: ``samples_seen`` counts the training
    samples of every epoch so far, so the first epoch runs at ``rate_init``.

    Parameters
    ----------
    rate_init : float > 0
    power_t : float, default=0.5
    samples_seen : int >= 0, default=0
        Samples trained on before this schedule starts (scikit-learn's ``t_``).
    rate : float or None, default=None
        The current rate, when resuming (None: ``rate_init``).
    """

    _STATE = ("rate", "samples_seen")

    def __init__(self, rate_init, power_t=0.5, samples_seen=0, rate=None):
        super().__init__(rate_init if rate is None else rate)
        self.rate_init = float(rate_init)
        self.power_t = power_t
        self.samples_seen = int(samples_seen)

    def epoch_end(self, n_samples):
        self.samples_seen += n_samples
        self.rate = self.rate_init / (self.samples_seen + 1) ** self.power_t


class Adaptive(Constant):
    """Constant until a plateau, which divides the rate by :data:`ADAPTIVE_DIVISOR`.

    A plateau at a rate of :data:`ADAPTIVE_MIN_RATE` or less stops training. The
    plateaus are those of the estimators' no-improvement rule; ``nf.train`` has none, so
    there it is constant (use :class:`ReduceOnPlateau`).
    """

    _STATE = ("rate",)

    def plateau(self):
        if self.rate <= ADAPTIVE_MIN_RATE:
            return True, " Learning rate too small. Stopping."
        self.rate /= ADAPTIVE_DIVISOR
        return False, " Setting learning rate to %f" % self.rate


class _EpochSchedule(Schedule):
    """A rate that is a function of the number of epochs done, ``epoch`` (0 in the first)."""

    _STATE = ("epoch",)

    def __init__(self, rate):
        self.base_rate = check_scalar(rate, "rate", low=0.0, low_open=True)
        self.epoch = 0

    @property
    def rate(self):
        return self.rate_at(self.epoch)

    def rate_at(self, epoch):
        """The rate of the epoch after ``epoch`` epochs (0-based epoch index)."""
        raise NotImplementedError

    def epoch_end(self, n_samples):
        self.epoch += 1


class StepDecay(_EpochSchedule):
    """``rate * gamma ** floor(e / step_size)`` in the epoch of index e (0, 1, ...).

    Parameters
    ----------
    rate : float > 0
    step_size : int >= 1
        Epochs between two decays.
    gamma : float in (0, 1], default=0.1
    """

    def __init__(self, rate, step_size, gamma=0.1):
        super().__init__(rate)
        self.step_size = check_scalar(step_size, "step_size", kind="int", low=1)
        self.gamma = check_scalar(gamma, "gamma", low=0.0, high=1.0, low_open=True)

    def rate_at(self, epoch):
        return self.base_rate * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(_EpochSchedule):
    """``rate * gamma ** e`` in the epoch of index e (0, 1, ...).

    Parameters
    ----------
    rate : float > 0
    gamma : float in (0, 1]
    """

    def __init__(self, rate, gamma):
        super().__init__(rate)
        self.gamma = check_scalar(gamma, "gamma", low=0.0, high=1.0, low_open=True)

    def rate_at(self, epoch):
        return self.base_rate * self.gamma ** epoch


class CosineDecay(_EpochSchedule):
    """A linear warm-up, then half a cosine from ``rate`` down to ``min_rate``.

    In the epoch of index e (0, 1, ...), with W = ``warmup_epochs`` and
    T = ``total_epochs``::

        e < W:       rate * (e + 1) / (W + 1)
        W <= e < T:  min_rate + (rate - min_rate) * (1 + cos(pi * (e - W) / (T - W))) / 2
        e >= T:      min_rate

    Parameters
    ----------
    rate : float > 0
        The peak rate, reached in epoch W.
    total_epochs : int > warmup_epochs
        The epoch index at which the cosine reaches ``min_rate``: usually the run's
        ``epochs``.
    warmup_epochs : int >= 0, default=0
    min_rate : float in [0, rate], default=0.0
    """

    def __init__(self, rate, total_epochs, warmup_epochs=0, min_rate=0.0):
        super().__init__(rate)
        self.warmup_epochs = check_scalar(warmup_epochs, "warmup_epochs", kind="int", low=0)
        self.total_epochs = check_scalar(total_epochs, "total_epochs", kind="int",
                                         low=self.warmup_epochs + 1)
        self.min_rate = check_scalar(min_rate, "min_rate", low=0.0, high=self.base_rate)

    def rate_at(self, epoch):
        W, T = self.warmup_epochs, self.total_epochs
        if epoch < W:
            return self.base_rate * (epoch + 1) / (W + 1)
        if epoch >= T:
            return self.min_rate
        cosine = (1.0 + math.cos(math.pi * (epoch - W) / (T - W))) / 2.0
        return self.min_rate + (self.base_rate - self.min_rate) * cosine


class ReduceOnPlateau(Schedule):
    """Multiply the rate by ``factor`` when the watched record stops improving.

    After every epoch: an epoch whose value beats the best by more than ``min_delta``
    becomes the best and resets the count of epochs without improvement; otherwise the
    count grows, and when it reaches ``patience`` the rate becomes
    ``max(rate * factor, min_rate)`` and the count restarts. The ``cooldown`` epochs
    after a reduction are not counted (a better value still becomes the best).

    Parameters
    ----------
    rate : float > 0
        The initial rate.
    monitor : {"auto", "val_loss", "loss", "val_score", "score"}, default="auto"
        ``"auto"``: ``val_loss`` when the run has validation data, else ``loss``.
        Scores improve upwards, losses downwards.
    factor : float in (0, 1), default=0.1
    patience : int >= 1, default=10
    min_delta : float >= 0, default=1e-4
    cooldown : int >= 0, default=0
    min_rate : float >= 0, default=0.0
    """

    _STATE = ("rate", "wait", "cooldown_left", "best")

    def __init__(self, rate, monitor="auto", factor=0.1, patience=10, min_delta=1e-4,
                 cooldown=0, min_rate=0.0):
        self.rate = check_scalar(rate, "rate", low=0.0, low_open=True)
        self.factor = check_scalar(factor, "factor", low=0.0, high=1.0, low_open=True,
                                   high_open=True)
        self.patience = check_scalar(patience, "patience", kind="int", low=1)
        self.cooldown = check_scalar(cooldown, "cooldown", kind="int", low=0)
        self.min_rate = check_scalar(min_rate, "min_rate", low=0.0)
        self._monitor = Monitor(monitor, min_delta, owner="ReduceOnPlateau")
        self.monitor, self.min_delta = monitor, self._monitor.min_delta
        self.wait = self.cooldown_left = 0

    @property
    def best(self):
        return self._monitor.best

    @best.setter
    def best(self, value):
        self._monitor.best = float(value)

    def train_begin(self, keys):
        best = self._monitor.best
        self._monitor.resolve(keys)
        if not np.isnan(best):  # set by set_state: a resumed run keeps its best
            self._monitor.best = best

    def observe(self, logs):
        improved = self._monitor.update(logs[self._monitor.key])
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            return
        if improved:
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.rate = max(self.rate * self.factor, self.min_rate)
            self.wait, self.cooldown_left = 0, self.cooldown


#: Schedule names, as scikit-learn's ``learning_rate`` parameter spells them.
SCHEDULES = {"constant": Constant, "invscaling": InverseScaling, "adaptive": Adaptive}


def make_schedule(name, rate_init, *, power_t=0.5, samples_seen=0, rate=None):
    """The schedule called ``name`` ({"constant", "invscaling", "adaptive"}).

    ``rate`` resumes a schedule at its current rate (None: start at ``rate_init``);
    ``samples_seen`` is the sample count ``"invscaling"`` continues from.
    """
    if name not in SCHEDULES:
        raise ValueError(f"learning-rate schedule must be one of {sorted(SCHEDULES)}, "
                         f"got {name!r}")
    current = rate_init if rate is None else rate
    if name == "invscaling":
        return InverseScaling(rate_init, power_t, samples_seen=samples_seen, rate=current)
    return SCHEDULES[name](current)


class NoImprovement:
    """Stop when ``patience`` epochs in a row miss the best value by ``tol`` or more.

    scikit-learn's MLP rule. Without ``score`` it watches the training loss (lower is
    better); with ``score`` it calls ``score()`` after every epoch and watches that
    (higher is better), calling ``on_best()`` at every new best.

    Parameters
    ----------
    tol : float
    patience : int or float
        ``n_iter_no_change``; ``np.inf`` never stops.
    best : float
        The best value so far (``np.inf`` for a loss, ``-np.inf`` for a score to start).
    count : int, default=0
        Epochs without improvement so far.
    score : callable or None, default=None
    on_best : callable or None, default=None
    verbose : bool, default=False
        Print scikit-learn's message at every plateau.

    Attributes
    ----------
    stopped : bool
        Whether a plateau stopped training.
    """

    def __init__(self, tol, patience, *, best, count=0, score=None, on_best=None,
                 verbose=False):
        self.tol, self.patience = tol, patience
        self.best, self.count = best, count
        self.score, self.on_best = score, on_best
        self.verbose = verbose
        self.stopped = False

    def update(self, loss):
        """Count the epoch whose training loss is ``loss`` (after ``on_epoch``)."""
        if self.score is None:
            self.count = self.count + 1 if loss > self.best - self.tol else 0
            if loss < self.best:
                self.best = loss
            return
        value = self.score()
        # A NaN score compares False both ways: it resets the count, as in scikit-learn.
        self.count = self.count + 1 if value < self.best + self.tol else 0
        if value > self.best:
            self.best = value
            if self.on_best is not None:
                self.on_best()

    @property
    def exhausted(self):
        """Whether more than ``patience`` epochs in a row did not improve."""
        return self.count > self.patience

    def settle(self, schedule):
        """Handle a plateau: ask ``schedule``; return True to stop training."""
        stop, note = schedule.plateau()
        if self.verbose:
            what = "Training loss" if self.score is None else "Validation score"
            print("%s did not improve more than tol=%f for %d consecutive epochs.%s"
                  % (what, self.tol, self.patience, note))
        if stop:
            self.stopped = True
        else:
            self.count = 0
        return stop


def is_schedule(lr):
    """Whether ``lr`` is a schedule object rather than a plain rate."""
    return hasattr(lr, "epoch_end") and hasattr(lr, "rate") and not np.isscalar(lr)

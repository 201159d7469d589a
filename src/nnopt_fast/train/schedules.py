"""Learning-rate schedules and the no-improvement stopping rule of the epoch driver."""

import numpy as np

__all__ = ["Constant", "InverseScaling", "Adaptive", "make_schedule", "NoImprovement",
           "SCHEDULES"]

#: ``"adaptive"`` divides the rate by this at every plateau ...
ADAPTIVE_DIVISOR = 5.0
#: ... and stops at a plateau once the rate is at or below this (scikit-learn's rule).
ADAPTIVE_MIN_RATE = 1e-6


class Constant:
    """The same learning rate every epoch; a plateau stops training.

    Parameters
    ----------
    rate : float > 0
        The rate of every epoch (``rate`` is read by the driver before each epoch).
    """

    def __init__(self, rate):
        self.rate = float(rate)

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


class InverseScaling(Constant):
    """``rate = rate_init / (samples_seen + 1) ** power_t``, updated after every epoch.

    Parameters
    ----------
    rate_init : float > 0
    power_t : float
    samples_seen : int >= 0, default=0
        Samples trained on before this schedule starts (scikit-learn's ``t_``).
    rate : float or None, default=None
        The current rate, when resuming (None: ``rate_init``).
    """

    def __init__(self, rate_init, power_t, samples_seen=0, rate=None):
        super().__init__(rate_init if rate is None else rate)
        self.rate_init = float(rate_init)
        self.power_t = power_t
        self.samples_seen = int(samples_seen)

    def epoch_end(self, n_samples):
        self.samples_seen += n_samples
        self.rate = self.rate_init / (self.samples_seen + 1) ** self.power_t


class Adaptive(Constant):
    """Constant until a plateau, which divides the rate by :data:`ADAPTIVE_DIVISOR`.

    A plateau at a rate of :data:`ADAPTIVE_MIN_RATE` or less stops training.
    """

    def plateau(self):
        if self.rate <= ADAPTIVE_MIN_RATE:
            return True, " Learning rate too small. Stopping."
        self.rate /= ADAPTIVE_DIVISOR
        return False, " Setting learning rate to %f" % self.rate


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

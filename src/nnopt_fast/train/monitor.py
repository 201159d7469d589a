"""The quantity a callback or schedule watches (``loss``, ``val_loss``, ...) and when it improves."""

import numpy as np

#: Records of an epoch that can be watched, and whether lower is better for each.
LOWER_IS_BETTER = {"loss": True, "val_loss": True, "score": False, "val_score": False}


class Monitor:
    """Track the best value of one record of the training history.

    Parameters
    ----------
    monitor : {"auto", "loss", "val_loss", "score", "val_score"}
        ``"auto"`` watches ``val_loss`` when the run has validation data, else ``loss``.
    min_delta : float >= 0
        An epoch improves when its value beats the best by more than this.
    owner : str
        Named in error messages (e.g. ``"EarlyStopping"``).

    Attributes
    ----------
    key : str or None
        The record watched, once :meth:`resolve` has run.
    best : float
        The best value so far (``inf`` for a loss, ``-inf`` for a score, to start).
    """

    def __init__(self, monitor="auto", min_delta=0.0, owner="monitor"):
        if monitor != "auto" and monitor not in LOWER_IS_BETTER:
            raise ValueError(f"{owner}: monitor must be 'auto' or one of "
                             f"{sorted(LOWER_IS_BETTER)}, got {monitor!r}")
        if isinstance(min_delta, bool) or not np.isscalar(min_delta) or not min_delta >= 0:
            raise ValueError(f"{owner}: min_delta must be a number >= 0, got {min_delta!r}")
        self.monitor, self.min_delta, self.owner = monitor, float(min_delta), owner
        self.key = None
        self.best = np.nan

    def resolve(self, keys):
        """Choose the record among ``keys`` (those the run records) and reset the best."""
        key = self.monitor
        if key == "auto":
            key = "val_loss" if "val_loss" in keys else "loss"
        if key not in keys:
            need = ("validation data (X_val and y_val, or validation_split)"
                    if key.startswith("val_") else "train_score=True")
            raise ValueError(f"{self.owner} monitors {key!r}, which this run does not "
                             f"record: it needs {need}")
        self.key = key
        self.best = np.inf if LOWER_IS_BETTER[key] else -np.inf
        return key

    def improves(self, value):
        """Whether ``value`` beats the best by more than ``min_delta`` (NaN never does)."""
        if LOWER_IS_BETTER[self.key]:
            return bool(value < self.best - self.min_delta)
        return bool(value > self.best + self.min_delta)

    def update(self, value):
        """Record ``value``; return whether it improved (and became the best)."""
        better = self.improves(value)
        if better:
            self.best = float(value)
        return better

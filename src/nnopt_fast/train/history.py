"""The per-epoch record of an ``nf.train`` run, and its state for resuming."""

import csv
import io
import os

import numpy as np

__all__ = ["History", "RECORDS"]

#: What each record of :attr:`History.history` holds.
RECORDS = {
    "loss": "training cost of the epoch (data term plus penalty)",
    "score": "accuracy (softmax / logistic) or R^2 (identity) on the training data",
    "val_loss": "data loss on the validation data after the epoch",
    "val_score": "accuracy or R^2 on the validation data after the epoch",
    "lr": "learning rate of the epoch",
    "epoch_time": "seconds of the epoch's training pass",
}


class History:
    """Per-epoch record of a training run, returned by ``nf.train``.

    Parameters
    ----------
    backend : str
        The backend that ran the epochs.
    keys : sequence of str
        The records kept, from :data:`RECORDS`.

    Attributes
    ----------
    history : dict of str to list of float
        One list per record, one value per epoch, as Keras's ``History.history``:
        ``loss`` (the sample-weighted mean of the batch losses, each batch's penalty
        taken before its update), ``val_loss`` and ``val_score`` (with validation data),
        ``score`` (with ``train_score=True``), ``lr`` and ``epoch_time``.
    epoch : list of int
        The epoch numbers, from 1 (a resumed run goes on counting).
    loss, val_loss, val_score, score, lr, epoch_time : list of float
        The lists of :attr:`history` (empty for records the run does not keep).
    stopped_epoch : int or None
        The epoch after which a callback stopped training.
    restored_epoch : int or None
        The epoch whose weights ``EarlyStopping(restore_best=True)`` put back.
    backend : str
    """

    def __init__(self, backend, keys=("loss", "lr", "epoch_time")):
        unknown = [k for k in keys if k not in RECORDS]
        if unknown:
            raise ValueError(f"unknown history records {unknown}; known: {list(RECORDS)}")
        self.backend = backend
        self.epoch = []
        self.history = {k: [] for k in RECORDS if k in keys}
        self.stopped_epoch = None
        self.restored_epoch = None
        self._state = None
        self._snapshot = None

    def _record(self, key):
        return self.history.get(key, [])

    loss = property(lambda self: self._record("loss"), doc="Training cost of each epoch.")
    score = property(lambda self: self._record("score"), doc="Training accuracy or R^2.")
    val_loss = property(lambda self: self._record("val_loss"), doc="Validation data loss.")
    val_score = property(lambda self: self._record("val_score"),
                         doc="Validation accuracy or R^2.")
    lr = property(lambda self: self._record("lr"), doc="Learning rate of each epoch.")
    epoch_time = property(lambda self: self._record("epoch_time"),
                          doc="Seconds of each epoch's training pass.")

    @property
    def epochs(self):
        """Number of epochs recorded."""
        return len(self.epoch)

    @property
    def state(self):
        """The :class:`~nnopt_fast.train.state.ResumeState` to continue this run from.

        ``nf.train(net, X, y, ..., state=history.state)`` continues exactly where this
        run ended (or, while it runs, where it is now: callbacks may read it). None
        before the first epoch of a run that failed at once.
        """
        if self._snapshot is not None:
            return self._snapshot()
        return self._state

    def append(self, epoch, record):
        """Add the record (a dict with one value per kept key) of ``epoch``."""
        missing = [k for k in self.history if k not in record]
        if missing:
            raise ValueError(f"the record of epoch {epoch} lacks {missing}")
        for key, values in self.history.items():
            values.append(float(record[key]))
        self.epoch.append(int(epoch))

    def to_dict(self):
        """``{"epoch": [...], "loss": [...], ...}``: plain lists, ready for JSON."""
        return {"epoch": list(self.epoch), **{k: list(v) for k, v in self.history.items()}}

    def to_frame(self):
        """The history as a pandas DataFrame, one row per epoch, indexed by epoch."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("History.to_frame needs pandas: pip install pandas") from None
        frame = pd.DataFrame(self.history, index=pd.Index(self.epoch, name="epoch"))
        return frame

    def to_csv(self, path=None):
        """Write the history as CSV (an ``epoch`` column, then one column per record).

        Parameters
        ----------
        path : str, os.PathLike or None
            None returns the text instead of writing a file.

        Returns
        -------
        str or None
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["epoch", *self.history])
        for i, epoch in enumerate(self.epoch):
            writer.writerow([epoch, *(repr(float(v[i])) for v in self.history.values())])
        if path is None:
            return buf.getvalue()
        with open(os.fspath(path), "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
        return None

    def __repr__(self):
        last = ""
        if self.epoch:
            parts = [f"{k} {v[-1]:.4g}" for k, v in self.history.items()
                     if k in ("loss", "val_loss", "val_score") and np.isfinite(v[-1])]
            last = ", last " + ", ".join(parts)
        return f"History({self.epochs} epochs on {self.backend!r}{last})"

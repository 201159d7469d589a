"""Callbacks of ``nf.train``: one protocol, early stopping, checkpoints and plain functions.

A callback is an object with any of these methods (:class:`Callback` supplies the ones
it lacks); ``nf.train`` calls them in the order the callbacks are listed:

- ``on_train_begin(net, history)``: before the first epoch;
- ``on_epoch_begin(epoch, net, history)``: before each epoch (``epoch`` counts from 1,
  and goes on counting in a resumed run);
- ``on_epoch_end(epoch, net, history)``: after each epoch, once ``history`` holds its
  record; a true return value stops training after this epoch;
- ``on_train_end(net, history)``: after the last epoch, when training ended normally or
  a callback stopped it (not after an exception or an interrupt).

A plain function ``cb(net, history)`` in the list is called as ``on_epoch_end``.
"""

import os

from .monitor import Monitor

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "LambdaCallback", "as_callbacks"]


class Callback:
    """Base class of callbacks: every hook does nothing (see the module docstring)."""

    def on_train_begin(self, net, history):
        pass

    def on_epoch_begin(self, epoch, net, history):
        pass

    def on_epoch_end(self, epoch, net, history):
        return False

    def on_train_end(self, net, history):
        pass


class LambdaCallback(Callback):
    """A callback made of functions, each with the signature of its hook.

    Parameters
    ----------
    on_train_begin : callable or None
        ``f(net, history)``.
    on_epoch_begin : callable or None
        ``f(epoch, net, history)``.
    on_epoch_end : callable or None
        ``f(epoch, net, history)``; a true return value stops training.
    on_train_end : callable or None
        ``f(net, history)``.
    """

    def __init__(self, on_train_begin=None, on_epoch_begin=None, on_epoch_end=None,
                 on_train_end=None):
        hooks = {"on_train_begin": on_train_begin, "on_epoch_begin": on_epoch_begin,
                 "on_epoch_end": on_epoch_end, "on_train_end": on_train_end}
        for name, fn in hooks.items():
            if fn is not None and not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable or None, got "
                                f"{type(fn).__name__}")
            if fn is not None:
                setattr(self, name, fn)


class _EpochEndFunction(Callback):
    """A plain ``cb(net, history)`` function, called after every epoch."""

    def __init__(self, fn):
        self.fn = fn

    def on_epoch_end(self, epoch, net, history):
        return self.fn(net, history)


def as_callbacks(callbacks):
    """The list of callback objects for ``nf.train``'s ``callbacks`` argument."""
    if callbacks is None:
        return []
    if callable(callbacks) or isinstance(callbacks, Callback):
        callbacks = [callbacks]
    out = []
    for cb in callbacks:
        hooks = [h for h in ("on_train_begin", "on_epoch_begin", "on_epoch_end",
                             "on_train_end") if callable(getattr(cb, h, None))]
        if hooks:
            out.append(cb if isinstance(cb, Callback) else _Partial(cb, hooks))
        elif callable(cb):
            out.append(_EpochEndFunction(cb))
        else:
            raise TypeError(f"callbacks must be a list of callables, or of objects with "
                            f"the hooks of nnopt_fast.train.callbacks (on_epoch_end, ...), "
                            f"got {type(cb).__name__}")
    return out


class _Partial(Callback):
    """An object that has some of the hooks (not a :class:`Callback` subclass)."""

    def __init__(self, obj, hooks):
        for name in hooks:
            setattr(self, name, getattr(obj, name))


class EarlyStopping(Callback):
    """Stop training when the watched record has stopped improving.

    Parameters
    ----------
    monitor : {"auto", "val_loss", "loss", "val_score", "score"}, default="auto"
        ``"auto"``: ``val_loss`` when the run has validation data, else ``loss``. Losses
        improve downwards, scores (accuracy, R^2) upwards.
    patience : int >= 1, default=5
        Stop after this many epochs in a row without improvement.
    min_delta : float >= 0, default=0.0
        An epoch improves when it beats the best by more than this.
    restore_best : bool, default=True
        When training ends (stopped or not), put back the weights of the best epoch if
        a later one was worse. The optimizer state (``history.state``) stays that of the
        last epoch.

    Attributes
    ----------
    best : float
        The best value seen.
    best_epoch : int or None
        The epoch that reached it.
    stopped_epoch : int or None
        The epoch after which this callback stopped training (None: it did not).
    """

    def __init__(self, monitor="auto", patience=5, min_delta=0.0, restore_best=True):
        from .._validation import check_scalar

        self.monitor = Monitor(monitor, min_delta, owner="EarlyStopping")
        self.patience = check_scalar(patience, "EarlyStopping: patience", kind="int", low=1)
        self.restore_best = bool(restore_best)
        self.best_epoch = self.stopped_epoch = None
        self._best_params = None
        self._wait = 0

    @property
    def best(self):
        return self.monitor.best

    def on_train_begin(self, net, history):
        self.monitor.resolve(history.history)
        self.best_epoch = self.stopped_epoch = self._best_params = None
        self._wait = 0

    def on_epoch_end(self, epoch, net, history):
        if self.monitor.update(history.history[self.monitor.key][-1]):
            self.best_epoch, self._wait = epoch, 0
            if self.restore_best:
                self._best_params = net.params.copy()
            return False
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, net, history):
        last = history.epoch[-1] if history.epoch else None
        if self._best_params is not None and self.best_epoch != last:
            net.params[...] = self._best_params
            history.restored_epoch = self.best_epoch
        self._best_params = None

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor.monitor!r}, patience={self.patience}, "
                f"min_delta={self.monitor.min_delta!r}, restore_best={self.restore_best})")


class ModelCheckpoint(Callback):
    """Write the network and its resumable state to a file during training.

    The file is nnopt_fast's checkpoint format (arrays in an .npz plus JSON, read
    without executing anything): ``nf.load_checkpoint(path)`` gives the network back,
    and ``nf.train(net, ..., state=path)`` continues the run exactly from it.

    Parameters
    ----------
    path : str or os.PathLike
        May hold ``{epoch}`` (e.g. ``"run/ckpt-{epoch:03d}.npz"``) for one file per save;
        otherwise each save replaces the last (atomically).
    every : int >= 1 or None, default=None
        Save after every ``every``-th epoch.
    save_best : bool, default=False
        Save after every epoch that improves ``monitor``.
    monitor : {"auto", "val_loss", "loss", "val_score", "score"}, default="auto"
        What ``save_best`` watches (``"auto"``: ``val_loss`` when the run has validation
        data, else ``loss``).
    min_delta : float >= 0, default=0.0

    With neither ``every`` nor ``save_best`` it saves after every epoch.

    Attributes
    ----------
    saved : list of (int, str)
        The epoch and the path of every save.
    """

    def __init__(self, path, every=None, save_best=False, monitor="auto", min_delta=0.0):
        from .._validation import check_scalar

        self.path = os.fspath(path)
        if every is not None:
            every = check_scalar(every, "ModelCheckpoint: every", kind="int", low=1)
        self.every = 1 if every is None and not save_best else every
        self.save_best = bool(save_best)
        self.monitor = Monitor(monitor, min_delta, owner="ModelCheckpoint")
        self.saved = []

    def on_train_begin(self, net, history):
        if self.save_best:
            self.monitor.resolve(history.history)

    def on_epoch_end(self, epoch, net, history):
        due = self.every is not None and epoch % self.every == 0
        if self.save_best and self.monitor.update(history.history[self.monitor.key][-1]):
            due = True
        if due:
            from .checkpoint import save_checkpoint

            path = self.path.format(epoch=epoch)
            save_checkpoint(path, net, history.state)
            self.saved.append((epoch, path))
        return False

    def __repr__(self):
        return (f"ModelCheckpoint({self.path!r}, every={self.every}, "
                f"save_best={self.save_best})")

"""``nf.train``'s data: checked once, split for validation, weighed by class."""

from typing import NamedTuple

import numpy as np

from .._validation import (
    check_class_weight,
    check_sample_weight,
    check_scalar,
    check_targets,
    check_X,
    weigh_samples,
)

__all__ = ["TrainingData", "check_training_data", "validation_indices"]

_ESTIMATORS_HINT = ("nf.train takes class indices 0..K-1 (softmax output) or 0/1 targets "
                    "(logistic output); nnopt_fast.MLPClassifier encodes labels of any kind "
                    "(strings, -1/1, 1..K) for you")


class TrainingData(NamedTuple):
    """The arrays of a run, as the epoch driver takes them.

    Attributes
    ----------
    X : ndarray of shape (n_train, n_in), the model dtype, C order
    T : ndarray
        Kernel targets of the training rows.
    sw : ndarray of shape (n_train,) or None
        Sample weights (times the class weights).
    X_val : ndarray or None
    y_val : ndarray or None
        Validation inputs and targets (None without validation data).
    """

    X: np.ndarray
    T: np.ndarray
    sw: object
    X_val: object
    y_val: object


def _targets(net, y, n_samples, name):
    """``check_targets``, with a pointer to the estimators when labels are of the wrong kind."""
    try:
        return check_targets(y, net.output, net.layer_sizes[-1], n_samples, net.dtype, name)
    except (TypeError, ValueError) as exc:
        if net.output == "identity" or "samples but X has" in str(exc):
            raise
        raise type(exc)(f"{exc}. {_ESTIMATORS_HINT}") from None


def validation_indices(T, output, fraction):
    """Rows ``(train, validation)`` of a ``validation_split`` of ``fraction``.

    Class targets (softmax, or a single logistic output) are split per class: the last
    ``round(fraction * n_k)`` rows of each class k, keeping at least one row of every
    class for training. Other targets: the last ``round(fraction * n)`` rows. The rows
    keep their order; nothing is random, so a resumed run splits the same way.
    """
    n = T.shape[0]
    if output == "softmax" or (output == "logistic" and T.shape[1] == 1):
        labels = T if output == "softmax" else T[:, 0]
        val = []
        for k in np.unique(labels):
            rows = np.flatnonzero(labels == k)
            n_val = min(int(np.floor(fraction * rows.size + 0.5)), rows.size - 1)
            if n_val > 0:
                val.append(rows[rows.size - n_val:])
        val = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    else:
        n_val = min(int(np.floor(fraction * n + 0.5)), n - 1)
        val = np.arange(n - n_val, n)
    if val.size == 0:
        raise ValueError(f"validation_split={fraction:g} leaves no validation rows out of "
                         f"{n}; use a larger fraction, or X_val and y_val")
    is_val = np.zeros(n, dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val), val


def check_training_data(net, X, y, *, sample_weight=None, class_weight=None, X_val=None,
                        y_val=None, validation_split=None):
    """Validate and split the data of an ``nf.train`` call; see its docstring.

    Returns
    -------
    TrainingData
    """
    Xc = check_X(X, net.dtype, n_features=net.layer_sizes[0])
    m = Xc.shape[0]
    if m == 0:
        raise ValueError("X must have at least one sample")
    T = _targets(net, y, m, "y")
    sw = check_sample_weight(sample_weight, m, np.float64)
    if validation_split is not None:
        if X_val is not None or y_val is not None:
            raise ValueError("give either validation_split or X_val and y_val, not both")
        fraction = check_scalar(validation_split, "validation_split", low=0.0, high=1.0,
                                low_open=True, high_open=True)
        train_rows, val_rows = validation_indices(T, net.output, fraction)
        X_val, y_val = Xc[val_rows], T[val_rows]
        Xc = Xc[train_rows] if hasattr(Xc, "tocsr") else np.ascontiguousarray(Xc[train_rows])
        T = np.ascontiguousarray(T[train_rows])
        sw = None if sw is None else sw[train_rows]
    elif X_val is not None or y_val is not None:
        if X_val is None or y_val is None:
            raise ValueError("X_val and y_val must be given together")
        X_val = check_X(X_val, net.dtype, name="X_val", n_features=net.layer_sizes[0])
        _targets(net, y_val, X_val.shape[0], "y_val")
    return TrainingData(Xc, T, _weights(net, T, sw, class_weight), X_val, y_val)


def _weights(net, T, sample_weight, class_weight):
    """``sample_weight`` times the class weights of the targets T, in the model's dtype."""
    m = T.shape[0]
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

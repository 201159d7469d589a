"""MLPClassifier's labels: encoded to int64 class indices once, decoded at predict time."""

import numpy as np
from sklearn.utils.multiclass import unique_labels

#: Target types MLPClassifier trains on (scikit-learn's ``type_of_target`` names).
Y_TYPES = ("binary", "multiclass", "multilabel-indicator")


def fit_classes(y, y_type):
    """Sorted classes of y and y encoded against them.

    Parameters
    ----------
    y : ndarray of shape (n_samples,) or (n_samples, n_labels)
    y_type : {"binary", "multiclass", "multilabel-indicator"}

    Returns
    -------
    classes : ndarray of shape (n_classes,)
        As scikit-learn's ``LabelBinarizer.classes_``: the sorted labels (object labels
        become a typed array), or ``arange(n_labels)`` for an indicator matrix.
    codes : ndarray
        int64 class indices of shape (n_samples,), or the 0/1 indicator matrix.
    """
    if y_type == "multilabel-indicator":
        return np.arange(y.shape[1]), np.asarray(y)
    try:
        classes, codes = np.unique(np.asarray(y), return_inverse=True)
    except TypeError:  # labels of mixed types: scikit-learn's own message
        unique_labels(y)
        raise
    if classes.dtype == object:
        # scikit-learn's unique_labels turns object labels into a typed array.
        classes = np.asarray(classes.tolist())
    return classes, codes.astype(np.int64, copy=False).reshape(-1)


def plain_labels(y):
    """The target type, classes and codes of a plain 1-D label array, or None for other y.

    A 1-D ``np.ndarray`` of booleans, integers, integral floats or unicode strings (finite
    and non-empty, as the estimators' checks of y leave it) is "binary" with at most two
    distinct labels and "multiclass" with more, as scikit-learn's ``type_of_target``
    finds; for any other y (2-D, objects, bytes, non-integral floats) the caller asks
    ``type_of_target``, which also words the errors.

    Returns
    -------
    (y_type, classes, codes) or None
        ``classes`` and ``codes`` as :func:`fit_classes` gives them.
    """
    if not (type(y) is np.ndarray and y.ndim == 1 and y.size and y.dtype.kind in "biufU"):
        return None
    if y.dtype.kind == "f":
        # Floats beyond int64 do not cast back: left to type_of_target, which warns once.
        with np.errstate(invalid="ignore"):
            if np.any(y != y.astype(np.int64).astype(y.dtype)):
                return None
    classes, codes = np.unique(y, return_inverse=True)
    y_type = "multiclass" if classes.shape[0] > 2 else "binary"
    return y_type, classes, codes.astype(np.int64, copy=False).reshape(-1)


def encode_known(y, classes):
    """A plain 1-D label array as int64 indices into ``classes``, or None.

    The short path of a later ``partial_fit``: when every label of ``y`` (a 1-D
    ``np.ndarray`` of booleans, numbers or unicode strings) is one of the fitted
    ``classes``, y is a valid binary or multiclass target and needs no other check.
    None for any other y (unknown labels, other shapes or dtypes), which the caller
    then checks in full for scikit-learn's error messages.
    """
    if not (type(y) is np.ndarray and y.ndim == 1 and y.dtype.kind in "biufU"):
        return None
    try:
        codes = np.searchsorted(classes, y)
    except TypeError:  # labels that do not compare with the classes (str and numbers)
        return None
    if not np.array_equal(classes[np.minimum(codes, len(classes) - 1)], y):
        return None
    return codes.astype(np.int64, copy=False)


def same_classes(classes, fitted):
    """Whether ``classes`` (as given to ``partial_fit``) name the fitted ``classes_``.

    The classes given are equal to ``fitted`` when they are ``fitted`` itself in its
    order (the usual case: checked directly), else when scikit-learn's
    ``unique_labels(classes)`` is, which also raises its own error for bad labels.
    """
    given = np.asarray(classes)
    if (given.shape == fitted.shape and given.dtype.kind == fitted.dtype.kind
            and np.array_equal(given, fitted)):
        return True
    return np.array_equal(fitted, unique_labels(classes))


def encode(y, classes, y_type):
    """y as class indices into ``classes`` (int64), or the indicator matrix.

    Raises
    ------
    ValueError
        For a label that is not in ``classes``.
    """
    if y_type == "multilabel-indicator":
        y = np.asarray(y)
        if y.ndim != 2 or y.shape[1] != len(classes):
            raise ValueError(f"y must be an indicator matrix of {len(classes)} labels, got "
                             f"shape {y.shape}")
        return y
    y = np.asarray(y)
    codes = np.searchsorted(classes, y)
    found = np.minimum(codes, len(classes) - 1)
    if not np.array_equal(classes[found], y):
        unseen = np.setdiff1d(unique_labels(y), classes)
        raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                         f"{classes}. 'y' has {unseen}.")
    return codes.astype(np.int64, copy=False)


def out_activation(y_type):
    """The output layer of a target type: softmax for multiclass, else logistic."""
    return "softmax" if y_type == "multiclass" else "logistic"


def n_outputs(y_type, n_classes):
    """Output units: one per class (multiclass) or label (multilabel), else one."""
    return n_classes if y_type in ("multiclass", "multilabel-indicator") else 1


def kernel_targets(codes, out_act, dtype):
    """What the kernels train on: int64 indices (softmax), else 0/1 in ``dtype`` (n, k)."""
    if out_act == "softmax":
        return np.ascontiguousarray(codes, dtype=np.int64)
    if codes.ndim == 1:
        # One logistic unit: the probability of classes_[1] (0 for a single class).
        return np.ascontiguousarray((codes == 1).reshape(-1, 1), dtype=dtype)
    return np.ascontiguousarray(codes, dtype=dtype)


def decode(P, classes, y_type):
    """Predicted labels from output probabilities P of shape (n_samples, n_outputs)."""
    if y_type == "multilabel-indicator":
        return (P > 0.5).astype(np.int64)
    if y_type == "multiclass":
        return classes.take(P.argmax(axis=1))
    if len(classes) == 1:
        return np.repeat(classes, P.shape[0])
    return classes[(P[:, 0] > 0.5).astype(np.int64)]


def decode_codes(codes, classes, y_type):
    """The labels of encoded targets (for scoring the validation split)."""
    return codes if y_type == "multilabel-indicator" else classes[codes]

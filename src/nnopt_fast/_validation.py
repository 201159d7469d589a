"""Input validation shared by the public API: one place that names the bad argument."""

import numbers

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def check_dtype(dtype):
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


#: Arrays of up to this many values are checked for finiteness elementwise (the boolean
#: temporary is small); larger ones by their sum first.
_FINITE_BY_ELEMENT = 1 << 16


def all_finite(a):
    """Whether every value of the float array ``a`` is finite.

    For a large array the sum is taken first: a NaN or an infinity makes it non-finite,
    so a finite sum proves the values finite without a boolean temporary of ``a``'s
    size. Only a sum that is not finite (a non-finite value, or finite values whose sum
    overflows) is followed by the elementwise check.
    """
    if a.size <= _FINITE_BY_ELEMENT:
        return bool(np.isfinite(a).all())
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(a.sum()):
            return True
    return bool(np.isfinite(a).all())


def check_X(X, dtype, name="X", n_features=None, finite=True):
    """Validate a 2-D finite numeric array and return a C-contiguous copy-or-view in ``dtype``.

    The caller's array is never modified: a new array is made whenever the dtype or the
    memory layout differs (float16, integers, Fortran order, strided views).
    ``finite=False`` leaves the NaN/infinity check to the caller (the compiled forward
    pass makes it while it reads X). A SciPy sparse matrix stays sparse: it comes back as
    a CSR matrix in ``dtype`` (its stored values checked), which training and inference
    use without densifying.
    """
    if hasattr(X, "tocsr") and not isinstance(X, np.ndarray):
        return _check_sparse_X(X, dtype, name, n_features)
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a 2-D numeric array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if finite and arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but the model expects {n_features}"
        )
    return arr


def _check_sparse_X(X, dtype, name, n_features):
    import scipy.sparse

    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}")
    # Shares X's arrays when X is CSR of the dtype already: nothing here writes them.
    csr = scipy.sparse.csr_matrix(X, dtype=dtype)
    if csr.nnz and not np.isfinite(csr.data).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if n_features is not None and csr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {csr.shape[1]} features, but the model expects {n_features}"
        )
    return csr


def check_targets(y, output, n_outputs, n_samples, dtype, name="y"):
    """Validate targets for an output layer; return the array the kernels take.

    softmax: integer labels in ``[0, n_outputs)`` -> int64 of shape (n,).
    logistic: 0/1 values of shape (n,) or (n, n_outputs) -> dtype (n, n_outputs).
    identity: finite values of shape (n,) or (n, n_outputs) -> dtype (n, n_outputs).
    exp: finite non-negative values (counts, rates), shaped as for identity.
    """
    arr = np.asarray(y)
    if arr.shape[:1] != (n_samples,):
        raise ValueError(
            f"{name} has {arr.shape[0] if arr.ndim else 0} samples but X has {n_samples}"
        )
    if output == "softmax":
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D integer class labels for a softmax output")
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise ValueError(f"{name} must hold integer class labels 0..{n_outputs - 1}")
        elif arr.dtype.kind not in "biu":
            raise TypeError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
        lab = arr.astype(np.int64)
        if lab.size and (lab.min() < 0 or lab.max() >= n_outputs):
            raise ValueError(
                f"{name} must hold class labels in 0..{n_outputs - 1}, "
                f"got values in {lab.min()}..{lab.max()}"
            )
        return np.ascontiguousarray(lab)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise ValueError(
            f"{name} must have shape (n_samples,) or (n_samples, {n_outputs}), got {np.shape(y)}"
        )
    T = np.ascontiguousarray(arr, dtype=dtype)
    if T.size and not np.isfinite(T).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if output == "logistic" and T.size and not np.all((T == 0) | (T == 1)):
        raise ValueError(f"{name} must hold 0/1 targets for a logistic output")
    if output == "exp":
        check_poisson_targets(T, name)
    return T


def check_poisson_targets(T, name="y"):
    """Raise ValueError unless the targets ``T`` of an exp output (the Poisson deviance)
    are non-negative."""
    if T.size and T.min() < 0:
        raise ValueError(f"{name} must hold non-negative targets for an exp output (the "
                         f"Poisson deviance), got a minimum of {T.min():g}")


def check_sample_weight(sw, n_samples, dtype):
    """Validate sample weights (None, or finite, non-negative, length n) in ``dtype``."""
    if sw is None:
        return None
    arr = np.asarray(sw)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 0:
        arr = np.full(n_samples, float(arr))
    if arr.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise ValueError("sample_weight must be finite and non-negative")
    return arr


def check_scalar(value, name, *, kind="real", low=None, high=None, low_open=False, high_open=False):
    """Check a scalar hyper-parameter: type (``"real"`` or ``"int"``) and range."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        value = int(value)
    else:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        bound = f"< {high}" if high_open else f"<= {high}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return value


def check_choice(value, name, choices):
    """Check that ``value`` is one of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_class_weight(class_weight, labels, classes, name="class_weight"):
    """Per-class weights of ``class_weight`` for integer labels, or None.

    Parameters
    ----------
    class_weight : None, "balanced" or dict
        A dict maps a class (an entry of ``classes``) to a finite weight >= 0; classes it
        leaves out weigh 1. ``"balanced"`` weighs each class present in ``labels`` by
        ``n_samples / (n_present_classes * count)``, as scikit-learn does.
    labels : ndarray of shape (n_samples,), int64
        Class indices into ``classes``.
    classes : sequence
        The class of each index (``range(K)`` for integer labels 0..K-1).

    Returns
    -------
    ndarray of shape (len(classes),), float64, or None
    """
    if class_weight is None:
        return None
    n_classes = len(classes)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"{name} must be None, 'balanced' or a dict, got "
                             f"{class_weight!r}")
        counts = np.bincount(labels, minlength=n_classes)
        present = counts > 0
        weights = np.ones(n_classes, dtype=np.float64)
        # scikit-learn's compute_class_weight("balanced"), operation for operation.
        weights[present] = len(labels) / (int(present.sum())
                                          * counts[present].astype(np.float64))
        return weights
    if not isinstance(class_weight, dict):
        raise TypeError(f"{name} must be None, 'balanced' or a dict, got "
                        f"{type(class_weight).__name__}")
    index = {c: i for i, c in enumerate(np.asarray(classes).tolist())}
    weights = np.ones(n_classes, dtype=np.float64)
    for key, value in class_weight.items():
        i = index.get(key.item() if isinstance(key, np.generic) else key)
        if i is None:
            raise ValueError(f"{name} has the key {key!r}, which is not a class; the "
                             f"classes are {list(index)}")
        weights[i] = check_scalar(value, f"{name}[{key!r}]", low=0.0)
    return weights


def weigh_samples(sample_weight, class_weights, labels, n_samples, dtype):
    """``sample_weight * class_weights[labels]`` in ``dtype`` (None when both are None).

    The product is taken in float64 and then cast, so that passing the product as
    ``sample_weight`` instead gives bit-identical weights.
    """
    if class_weights is None:
        return check_sample_weight(sample_weight, n_samples, dtype)
    weights = class_weights[labels]
    sw = check_sample_weight(sample_weight, n_samples, np.float64)
    if sw is not None:
        weights = sw * weights
    return np.ascontiguousarray(weights, dtype=dtype)

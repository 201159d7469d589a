"""``run_epoch`` of every backend: its argument checks, its plan and its team, written once."""

from typing import NamedTuple

import numpy as np

from .codes import STATUS
from .dispatch import MAX_BLAS_DIM
from .plan import plan_for
from .team import new_stop_flag, run_serial

__all__ = ["EpochData", "SparseRows", "make_run_epoch", "check_epoch", "is_sparse"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class EpochData(NamedTuple):
    """The training set of an epoch, as the compiled epochs take it.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_in), C-contiguous, the model dtype, or, for a
        sparse X, its :class:`SparseRows` (the first layer then runs on its non-zeros)
    y : ndarray of shape (n_samples,), int64
        Class labels (softmax output), else empty.
    Y : ndarray of shape (n_samples, n_out), the model dtype
        Targets (other outputs), else of shape (0, 0).
    sw : ndarray of shape (n_samples,), the model dtype, or None
        Sample weights.
    """

    X: np.ndarray
    y: np.ndarray
    Y: np.ndarray
    sw: object


class SparseRows(NamedTuple):
    """A sparse X as the compiled epochs take it: CSR arrays with int64 indices.

    Attributes
    ----------
    data : ndarray of shape (nnz,), the model dtype
    indices : ndarray of shape (nnz,), int64
        The column of each non-zero.
    indptr : ndarray of shape (n_samples + 1,), int64
        Row r's non-zeros are ``data[indptr[r]:indptr[r + 1]]``.
    matrix : scipy.sparse.csr_matrix
        The same rows (the reference's products use it).
    """

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    matrix: object

    @property
    def shape(self):
        return self.matrix.shape


def is_sparse(X):
    """Whether X is a SciPy sparse matrix or array (without importing SciPy for dense X)."""
    return hasattr(X, "tocsr") and not isinstance(X, np.ndarray)


def _sparse_rows(X, dtype, n_features):
    """A sparse X as :class:`SparseRows` of ``dtype`` (copies only where needed).

    Float data of another dtype is refused, as for dense X; other formats (CSC, COO, ...)
    are converted; explicit zeros and duplicate entries stay (the kernels add them up, as
    SciPy's products do).
    """
    import scipy.sparse

    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"run_epoch: X has shape {X.shape}; expected (n_samples, "
                         f"{n_features})")
    if X.dtype != dtype and X.dtype.kind not in "biu":
        raise TypeError(f"run_epoch: X must be {np.dtype(dtype)}, got {X.dtype}")
    csr = scipy.sparse.csr_matrix(X, dtype=dtype)
    return SparseRows(np.ascontiguousarray(csr.data), np.asarray(csr.indices, np.int64),
                      np.asarray(csr.indptr, np.int64), csr)


def _array(a, name, dtype, shape):
    """``a`` as a C-contiguous array of ``dtype`` and ``shape``, or a TypeError naming it.

    A float array of another dtype is refused (the kernels never cast the training
    data); an integer or non-contiguous array of the right kind is copied.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"run_epoch: {name} must be a numpy array, got {type(a).__name__}")
    want = np.dtype(dtype)
    if a.dtype != want and (a.dtype.kind == "f" or want.kind == "f"):
        raise TypeError(f"run_epoch: {name} must be {want}, got {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"run_epoch: {name} has shape {a.shape}; expected {tuple(shape)}")
    return np.ascontiguousarray(a, dtype=want)


def _check_state(cfg, state):
    P = state.params
    if not (isinstance(P, np.ndarray) and P.dtype in _FLOATS and P.ndim == 1
            and P.flags.c_contiguous and P.flags.writeable):
        raise TypeError("run_epoch: state.params must be a writeable, contiguous 1-D "
                        "float32 or float64 array")
    need = {"grads": True, "velocity": cfg.optimizer in ("momentum", "nesterov"),
            "m": cfg.optimizer == "adam", "v": cfg.optimizer == "adam"}
    for name, required in need.items():
        a = getattr(state, name)
        if not (isinstance(a, np.ndarray) and a.dtype == P.dtype and a.flags.c_contiguous
                and a.ndim == 1 and a.size in (0, P.size)):
            raise TypeError(f"run_epoch: state.{name} must be a contiguous {P.dtype} array "
                            "like state.params (or empty)")
        if required and a.size != P.size:
            raise ValueError(f"run_epoch: state.{name} must be allocated for optimizer "
                             f"{cfg.optimizer!r}")
    return P.dtype


def check_epoch(cfg, state, X, T, sw, perm, layout="rows"):
    """Validate the arguments of ``run_epoch``; return ``(plan, data, perm)``, the plan in
    workspace ``layout`` (see :data:`nnopt_fast.kernels.plan.LAYOUTS`).

    Raises
    ------
    TypeError
        For arrays of the wrong kind or dtype (float arrays are never cast).
    ValueError
        For shapes that do not match the model, labels outside ``[0, n_classes)``, an
        index of ``perm`` outside ``[0, n_samples)``, or a batch or layer wider than
        BLAS can take.
    """
    dt = _check_state(cfg, state)
    sizes = tuple(int(s) for s in cfg.layer_sizes)
    for what, n in (("batch_size", cfg.batch_size), ("a layer width", max(sizes))):
        if n > MAX_BLAS_DIM:
            raise ValueError(f"run_epoch: {what} is {n}; the kernels' GEMMs take at most "
                             f"2**31 - 1 = {MAX_BLAS_DIM} rows or columns")
    if is_sparse(X):
        X = _sparse_rows(X, dt, sizes[0])
        n = X.shape[0]
    else:
        n = X.shape[0] if isinstance(X, np.ndarray) and X.ndim == 2 else None
        if n is None:
            raise TypeError(f"run_epoch: X must be a 2-D numpy array or a SciPy sparse "
                            f"matrix, got {getattr(X, 'shape', type(X).__name__)}")
        X = _array(X, "X", dt, (n, sizes[0]))
    k = sizes[-1]
    if cfg.output == "softmax":
        y = _array(T, "T", np.int64, (n,))
        if n and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"run_epoch: T must hold labels in [0, {k}), got labels from "
                             f"{y.min()} to {y.max()}")
        Y = np.zeros((0, 0), dtype=dt)
    else:
        y, Y = np.zeros(0, dtype=np.int64), _array(T, "T", dt, (n, k))
    if sw is not None:
        sw = _array(sw, "sw", dt, (n,))
    if not (isinstance(perm, np.ndarray) and perm.ndim == 1 and perm.dtype.kind in "iu"):
        raise TypeError("run_epoch: perm must be a 1-D integer numpy array")
    perm = np.ascontiguousarray(perm, dtype=np.int64)
    if perm.size and (perm.min() < 0 or perm.max() >= n):
        raise ValueError(f"run_epoch: perm must index rows of X, in [0, {n})")
    return plan_for(cfg, state, layout), EpochData(X, y, Y, sw), perm


def _stop_flag(state):
    flag = state.workspace.get("stop")
    if flag is None:
        flag = state.workspace["stop"] = new_stop_flag()
    flag[:] = 0
    return flag


def make_run_epoch(serial, parallel=None, layout=None):
    """The public ``run_epoch`` of a backend, from its compiled epochs.

    Parameters
    ----------
    serial : callable
        ``serial(cfg, plan, state, data, perm, lr, step0, stop) -> (data_loss,
        penalty_loss, n_steps, status)``, the one-thread epoch (``status`` one of
        :data:`nnopt_fast.kernels.codes.STATUS`).
    parallel : callable or None
        ``parallel(cfg, plan, state, data, perm, lr, step0, stop)``, the multithreaded
        epoch (``cfg.n_threads`` threads, ``cfg.parallel`` sync or Hogwild), which runs its
        own team; None if the backend has none (it then runs the serial epoch).
    layout : callable or None
        ``layout(cfg, sparse) -> "rows" | "features"``, the workspace layout the backend
        runs a configuration in, ``sparse`` telling whether X is sparse (default: always
        rows).

    Returns
    -------
    callable
        ``run_epoch(cfg, state, X, T, sw, perm, lr, step0)``, with the semantics of
        :func:`nnopt_fast.kernels.reference.run_epoch`.
    """

    def run_epoch(cfg, state, X, T, sw, perm, lr, step0):
        plan, data, perm = check_epoch(cfg, state, X, T, sw, perm,
                                       "rows" if layout is None else layout(cfg, is_sparse(X)))
        lr, step0 = float(lr), int(step0)
        stop = _stop_flag(state)
        hogwild = cfg.n_threads > 1 and cfg.parallel == "hogwild"
        if cfg.n_threads > 1 and parallel is not None:
            out = parallel(cfg, plan, state, data, perm, lr, step0, stop)
        else:
            work = perm.size * int(np.dot(plan.sizes[:-1], plan.sizes[1:]))
            if isinstance(data.X, SparseRows):
                work = work * data.X.data.size // max(1, data.X.shape[0] * int(plan.sizes[0]))
            out = run_serial(lambda: serial(cfg, plan, state, data, perm, lr, step0, stop),
                             work, stop)
        data_loss, pen, n_steps, status = out
        if status == STATUS["zero_weight"]:
            which = "a batch" if hogwild else f"batch {int(n_steps)}"
            raise ZeroDivisionError(f"{which} of the epoch has zero total sample weight")
        if status == STATUS["interrupted"]:
            raise KeyboardInterrupt
        return float(data_loss), float(pen), int(n_steps), int(status)

    run_epoch.__doc__ = """One epoch of mini-batch training; see
    :func:`nnopt_fast.kernels.reference.run_epoch` for the semantics, parameters and
    return value, which every backend shares."""
    return run_epoch

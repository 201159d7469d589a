"""``nnopt_fast.save`` / ``nnopt_fast.load``: estimators and the Pipelines holding them."""

import os

from .._serialization import ModelFileError, npz, open_zip, skops_format
from ..train.state import OptimizerState
from ._classifier import MLPClassifier
from ._regressor import MLPRegressor

_CLASSES = {cls.__name__: cls for cls in (MLPClassifier, MLPRegressor)}
#: What nnopt_fast adds to skops's trusted types when it loads a skops file.
TRUSTED_TYPES = [MLPClassifier, MLPRegressor, OptimizerState]


def save(obj, path):
    """Save a fitted object, such as a Pipeline holding nnopt_fast's estimators, without pickle.

    The file is skops's format (``skops.io``) plus a stamp of the nnopt_fast, numpy and
    scikit-learn versions that wrote it; :func:`load` reads it back. A bare estimator
    can also be saved in nnopt_fast's own format with ``est.save(path)``.

    Parameters
    ----------
    obj : object
        Anything skops can persist: scikit-learn estimators, Pipelines,
        ColumnTransformers, nnopt_fast's estimators.
    path : str or os.PathLike
        Written through a temporary file in the same directory, so that a crash never
        leaves a half-written file.
    """
    skops_format.write(obj, path)


def load(path):
    """Load a model written by ``est.save(path)`` or :func:`save`.

    Nothing in the file is executed: nnopt_fast's .npz files are read as arrays and JSON,
    skops files by ``skops.io`` trusting only its defaults and nnopt_fast's estimators.
    Every array's declared size is checked before it is decompressed, and every
    attribute of a loaded nnopt_fast estimator is checked for type, shape and value.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    object
        An MLPClassifier or MLPRegressor, or the object given to :func:`save`.

    Raises
    ------
    ModelFileError
        (a ``ValueError``) when the file is corrupted, truncated, not a model file, of a
        newer format version, inconsistent, or holds types nnopt_fast does not trust.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if not head.startswith(b"PK"):
        raise ModelFileError(f"{path} is not an nnopt_fast model file (neither an .npz "
                             f"nor a skops archive)")
    with open_zip(path, "an .npz or skops archive") as archive:
        is_skops = skops_format.is_skops(archive)
    if is_skops:
        return skops_format.read(path, TRUSTED_TYPES)
    kind, state = npz.read(path)
    est = _CLASSES[kind].__new__(_CLASSES[kind])
    try:
        est.__setstate__(state)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return est

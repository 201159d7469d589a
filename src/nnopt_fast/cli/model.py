"""The model file of ``nnopt-fast train --save``: the network with its scaling and labels."""

import os
from dataclasses import dataclass

import numpy as np

from .options import UsageError, one_line

__all__ = ["Model", "save_model", "load_model"]

#: The ``metadata["cli"]`` entry that marks a checkpoint as a command line model.
KIND = "nnopt-fast model"


@dataclass
class Model:
    """A trained network and what it needs to predict from raw features.

    Attributes
    ----------
    net : MLP
    task : {"classification", "regression"}
    x_mean, x_scale : ndarray of shape (n_features,)
        The standardization of the features (training rows' mean and deviation).
    classes : list or None
        The label of each output unit (classification).
    y_mean, y_scale : float
        The standardization of a regression target.
    feature_names : list of str or None
    label_name : str or None
    label_index : int or None
        Where the label column stood in the training CSV (0-based), so that a file of the
        same layout without a header predicts with that column set aside.
    state : ResumeState or None
    """

    net: object
    task: str
    x_mean: np.ndarray
    x_scale: np.ndarray
    classes: object = None
    y_mean: float = 0.0
    y_scale: float = 1.0
    feature_names: object = None
    label_name: object = None
    label_index: object = None
    state: object = None

    @property
    def n_features(self):
        return self.x_mean.size

    def _inputs(self, X):
        return (np.asarray(X, dtype=np.float64) - self.x_mean) / self.x_scale

    def predict(self, X):
        """Labels (classification) or values in the target's units (regression)."""
        if self.task == "regression":
            return self.net.predict(self._inputs(X)).astype(np.float64) * self.y_scale \
                + self.y_mean
        return np.asarray(self.classes, dtype=object)[self.net.predict(self._inputs(X))]

    def predict_proba(self, X):
        """Class probabilities, one column per entry of :attr:`classes` (float64)."""
        if self.task == "regression":
            raise UsageError("predict: --proba needs a classification model; this one "
                             "predicts a regression target")
        return self.net.predict_proba(self._inputs(X)).astype(np.float64)


def save_model(path, model):
    """Write ``model`` as an nnopt_fast checkpoint file (``nf.load_checkpoint`` reads it)."""
    from ..train.checkpoint import save_checkpoint

    metadata = {"cli": KIND, "task": model.task, "feature_names": model.feature_names,
                "label_name": model.label_name, "label_index": model.label_index,
                "y_mean": float(model.y_mean),
                "y_scale": float(model.y_scale),
                "classes": None if model.classes is None else [
                    c.item() if isinstance(c, np.generic) else c for c in model.classes]}
    try:
        save_checkpoint(path, model.net, model.state, metadata=metadata,
                        arrays={"x_mean": model.x_mean, "x_scale": model.x_scale})
    except OSError as exc:
        raise UsageError(f"--save: cannot write {path} ({one_line(exc)})") from None


def load_model(path):
    """Read a file written by :func:`save_model`; a wrong file is a one-line UsageError."""
    from .._serialization import ModelFileError
    from ..train.checkpoint import load_checkpoint

    if not os.path.isfile(path):
        raise UsageError(f"predict: no such model file: {path}")
    try:
        saved = load_checkpoint(path)
    except ModelFileError as exc:
        raise UsageError(f"predict: {one_line(exc)} (expected a file of nnopt-fast train "
                         f"--save)") from None
    meta = saved.metadata
    if meta.get("cli") != KIND:
        raise UsageError(f"predict: {path} is a checkpoint without the scaling and labels "
                         f"of nnopt-fast train --save")
    x_mean, x_scale = saved.arrays.get("x_mean"), saved.arrays.get("x_scale")
    n_in = saved.net.layer_sizes[0]
    if x_mean is None or x_scale is None or x_mean.shape != (n_in,) or \
            x_scale.shape != (n_in,) or not np.all(x_scale > 0):
        raise UsageError(f"predict: {path} has no valid feature scaling for {n_in} features")
    classes = meta.get("classes")
    task = meta.get("task")
    if task not in ("classification", "regression") or (
            task == "classification" and (not isinstance(classes, list)
                                          or len(classes) != saved.net.layer_sizes[-1])):
        raise UsageError(f"predict: {path} describes its task or labels inconsistently")
    label_index = meta.get("label_index")
    if label_index is not None and (isinstance(label_index, bool)
                                    or not isinstance(label_index, int) or label_index < 0):
        raise UsageError(f"predict: {path} has a malformed label_index {label_index!r}")
    return Model(saved.net, task, x_mean, x_scale, classes, meta.get("y_mean", 0.0),
                 meta.get("y_scale", 1.0), meta.get("feature_names"), meta.get("label_name"),
                 label_index, saved.state)

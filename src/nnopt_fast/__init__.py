"""nnopt_fast: fast CPU training of fully connected neural networks."""

import importlib

from .kernels import backends
from .model import MLP
from .train import (
    Callback,
    DivergenceError,
    EarlyStopping,
    History,
    LambdaCallback,
    ModelCheckpoint,
    TrainingInterrupted,
    train,
    train_many,
)
from .train import schedules

__version__ = "0.1.0"

# The estimators and the diagnosis tools pull in scikit-learn (seconds to import); they load
# on first use so that `import nnopt_fast` plus a first `train` stays well under a second.
_LAZY = {
    "MLPClassifier": ".estimators",
    "MLPRegressor": ".estimators",
    "MLPEnsemble": ".estimators",
    "ScalingWarning": ".estimators",
    "FitDivergenceError": ".estimators",
    "load": ".estimators",
    "save": ".estimators",
    "ModelFileError": "._serialization",
    "bias_variance": ".diagnosis",
    "bias_variance_curve": ".diagnosis",
    "learning_curve": ".diagnosis",
    "validation_curve": ".diagnosis",
    "diagnose": ".diagnosis",
    "save_checkpoint": ".train.checkpoint",
    "load_checkpoint": ".train.checkpoint",
}

__all__ = ["MLP", "train", "train_many", "History", "DivergenceError", "TrainingInterrupted",
           "Callback", "EarlyStopping", "ModelCheckpoint", "LambdaCallback", "schedules",
           "backends", "__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nnopt_fast' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

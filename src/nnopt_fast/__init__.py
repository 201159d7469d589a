"""nnopt_fast: fast CPU training of fully connected neural networks."""

from .kernels import backends
from .model import MLP
from .train import DivergenceError, History, train
from ._serialization import ModelFileError, load
from .estimators import FitDivergenceError, MLPClassifier, MLPRegressor, ScalingWarning

__version__ = "0.1.0"

__all__ = ["MLP", "train", "History", "DivergenceError", "backends", "__version__"]
__all__ += ["MLPClassifier", "MLPRegressor", "ScalingWarning", "FitDivergenceError", "load",
            "ModelFileError"]
from .diagnose import bias_variance, diagnose, learning_curve, validation_curve

__all__ += ["bias_variance", "learning_curve", "validation_curve", "diagnose"]

"""scikit-learn drop-in MLPClassifier / MLPRegressor trained by nnopt_fast's kernels."""

from ._classifier import MLPClassifier
from ._ensemble import MLPEnsemble
from ._errors import FitDivergenceError
from ._persistence import load, save
from ._regressor import MLPRegressor
from ._scaling import ScalingWarning
from ._threads import _n_threads_default, _thread_budget

__all__ = ["MLPClassifier", "MLPEnsemble", "MLPRegressor", "ScalingWarning",
           "FitDivergenceError", "load", "save"]

"""Bias-variance diagnosis: decomposition, learning and validation curves, advice, plots."""

from .advice import Diagnosis, diagnose
from .curves import LearningCurve, ValidationCurve, learning_curve, validation_curve
from .decomposition import BiasVariance, bias_variance
from .decomposition_curve import BiasVarianceCurve, bias_variance_curve
from .plots import plot_bias_variance_curve, plot_learning_curve, plot_validation_curve
from .steps import Step

__all__ = [
    "BiasVariance", "BiasVarianceCurve", "Diagnosis", "LearningCurve", "Step",
    "ValidationCurve", "bias_variance", "bias_variance_curve", "diagnose", "learning_curve",
    "plot_bias_variance_curve", "plot_learning_curve", "plot_validation_curve",
    "validation_curve",
]

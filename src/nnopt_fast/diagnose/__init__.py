"""Bias-variance diagnosis: decomposition, learning and validation curves, advice, plots."""

from .decomposition import BiasVariance, BiasVarianceCurve, bias_variance, bias_variance_curve

__all__ = ["BiasVariance", "BiasVarianceCurve", "bias_variance", "bias_variance_curve"]

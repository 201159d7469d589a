"""MLP parameters in one contiguous buffer, prediction and loss."""

from .mlp import MLP

__all__ = ["MLP"]

"""nnopt_fast: fast CPU training of fully connected neural networks."""

from .kernels import backends
from .model import MLP
from .train import DivergenceError, History, train

__version__ = "0.1.0"

__all__ = ["MLP", "train", "History", "DivergenceError", "backends", "__version__"]

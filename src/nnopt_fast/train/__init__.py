"""The training loop: epochs, shuffling, divergence handling, callbacks."""

from .loop import DivergenceError, History, make_config, run_epochs, score, train
from .state import TrainConfig, TrainState

__all__ = ["DivergenceError", "History", "TrainConfig", "TrainState", "make_config",
           "run_epochs", "score", "train"]

"""The training loop: epochs, shuffling, divergence handling, callbacks."""

from .loop import DivergenceError, History, make_config, run_epochs, score, train
from .state import OptimizerState, TrainConfig, TrainState

__all__ = ["DivergenceError", "History", "OptimizerState", "TrainConfig", "TrainState",
           "make_config", "run_epochs", "score", "train"]

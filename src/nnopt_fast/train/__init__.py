"""The training loop: epochs, shuffling, divergence handling, schedules, callbacks, resuming."""

from .callbacks import Callback, EarlyStopping, LambdaCallback, ModelCheckpoint
from .history import History
from .loop import DivergenceError, EpochDriver, make_config, run_epochs, score
from .many import Histories, train_many
from .schedules import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    InverseScaling,
    ReduceOnPlateau,
    StepDecay,
)
from .state import OptimizerState, ResumeState, TrainConfig, TrainState
from .trainer import TrainingInterrupted, train

__all__ = ["Callback", "Constant", "CosineDecay", "DivergenceError", "EarlyStopping",
           "EpochDriver", "ExponentialDecay", "History", "Histories", "InverseScaling", "LambdaCallback",
           "ModelCheckpoint", "OptimizerState", "ReduceOnPlateau", "ResumeState",
           "StepDecay", "TrainConfig", "TrainState", "TrainingInterrupted", "make_config",
           "run_epochs", "score", "train", "train_many"]

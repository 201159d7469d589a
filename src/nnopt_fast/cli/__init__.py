"""The ``nnopt-fast`` command line: train, predict and diagnose, on one data loader."""

from .main import build_parser, main
from .options import UsageError

__all__ = ["UsageError", "build_parser", "main"]

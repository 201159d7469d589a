"""Model files: nnopt_fast's .npz of one estimator and skops's format of any fitted object,
both read without executing code from the file."""

from . import _npz as npz
from . import _skops as skops_format
from ._errors import ModelFileError
from ._files import open_zip
from ._state import check_state

__all__ = ["ModelFileError", "check_state", "npz", "open_zip", "skops_format"]

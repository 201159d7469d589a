"""Model files: nnopt_fast's .npz of one estimator and skops's format of any fitted object,
both read without executing code from the file."""

from . import _npz as npz
from . import _skops as skops_format
from ._errors import ModelFileError
from ._files import open_zip, read_npy_member, write_atomic
from ._state import check_state
from ._versions import versions

__all__ = ["ModelFileError", "check_state", "npz", "open_zip", "read_npy_member",
           "skops_format", "versions", "write_atomic"]

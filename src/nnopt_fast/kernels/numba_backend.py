"""The Numba backend under its former import path (it lives in :mod:`nnopt_fast.kernels.numba`)."""

from .numba import *  # noqa: F401,F403
from .numba import __all__  # noqa: F401

"""NumPy reference kernels: the specification every compiled backend is tested against.

Each kernel's docstring states its math. The bodies live in the submodules
(activations, dropout, losses, updates, epoch) and run on validated arrays; the public
functions here wrap them in the argument handling every backend shares
(:mod:`nnopt_fast.kernels.dispatch`), so the reference accepts and rejects exactly what
the compiled backends do.
"""

from ..codes import ACTIVATIONS, OPTIMIZERS, OUTPUTS, STATUS
from ..dispatch import KERNEL_NAMES, check_same_dtype, make_kernels
from ..epoch import make_run_epoch
from ..hashing import dropout_key, dropout_threshold
from . import activations as _activations
from . import dropout as _dropout
from . import epoch as _epoch
from . import losses as _losses
from . import updates as _updates
from .activations import activate, derivative, output_activation
from .epoch import penalty_coefficients

#: The kernels every backend exposes with these names, signatures and semantics.
KERNELS = (*KERNEL_NAMES, "dropout_threshold", "run_epoch")

__all__ = ["ACTIVATIONS", "OUTPUTS", "OPTIMIZERS", "STATUS", "KERNELS", "BACKEND_NAME",
           "backend_info", "check_same_dtype", "dropout_key", "activate", "derivative",
           "output_activation", "penalty_coefficients", *KERNELS]

_BODIES = {name: getattr(mod, name)
           for mod in (_activations, _dropout, _losses, _updates, _epoch)
           for name in KERNEL_NAMES if hasattr(mod, name)}
#: The reference's docstrings document every backend's kernels.
DOCS = {name: getattr(mod, name).__doc__
        for mod in (_activations, _dropout, _losses, _updates, _epoch)
        for name in KERNEL_NAMES if hasattr(mod, name)}

globals().update(make_kernels(_BODIES, DOCS))
run_epoch = make_run_epoch(_epoch.run_epoch)
run_epoch.__doc__ = _epoch.run_epoch.__doc__
DOCS["run_epoch"] = run_epoch.__doc__

#: Name of this backend in the registry.
BACKEND_NAME = "numpy"


def backend_info():
    """Details reported by :func:`nnopt_fast.backends`."""
    return {"detail": "NumPy reference implementation (the specification)"}

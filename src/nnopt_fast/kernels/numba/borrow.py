"""Borrowed arrays: the compiled epochs work on their caller's arrays without reference counts.

Numba counts references to every array it passes to a function or cuts a view from: two
atomic operations per array per call or view, which were 40-50 % of a one-sample training
step (the step makes ~20 calls and views, each over a few arrays). An epoch's arrays
outlive the epoch (its caller holds them, and the compiled code neither stores nor
returns them), so the epoch's entry points borrow them: :func:`borrow` gives the same
arrays without their memory-manager handle, and Numba then skips their reference
counting, as it does for the arrays of its own parallel kernels.
"""

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["borrow"]


def _borrowed(context, builder, ty, value):
    if isinstance(ty, types.Array):
        src = context.make_array(ty)(context, builder, value)
        out = context.make_array(ty)(context, builder)
        for name in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(out, name, getattr(src, name))
        out.meminfo = cgutils.get_null_value(out.meminfo.type)
        out.parent = cgutils.get_null_value(out.parent.type)
        return out._getvalue()
    if isinstance(ty, types.BaseTuple):
        items = [_borrowed(context, builder, t, builder.extract_value(value, i))
                 for i, t in enumerate(ty)]
        return context.make_tuple(builder, ty, items)
    return value


@intrinsic
def borrow(typingctx, value):
    """``value`` (an array, or a tuple of arrays and scalars, nested) with every array
    borrowed: valid while the caller holds the original; never stored or returned."""
    def codegen(context, builder, sig, args):
        return _borrowed(context, builder, sig.args[0], args[0])

    return value(value), codegen

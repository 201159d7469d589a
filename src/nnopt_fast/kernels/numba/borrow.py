"""Borrowed arrays, cheap views and prefetches: the compiled epochs work on their caller's
arrays without reference counts, cut views without a helper call, and ask for the next
batch's rows ahead of time.

Numba counts references to every array it passes to a function or cuts a view from: two
atomic operations per array per call or view, which were 40-50 % of a one-sample training
step (the step makes ~20 calls and views, each over a few arrays). An epoch's arrays
outlive the epoch (its caller holds them, and the compiled code neither stores nor
returns them), so the epoch's entry points borrow them: :func:`borrow` gives the same
arrays without their memory-manager handle, and Numba then skips their reference
counting, as it does for the arrays of its own parallel kernels.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic

__all__ = ["borrow", "as_matrix", "as_flat", "prefetch"]


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


def _view(context, builder, ty, src, shape):
    """A C-contiguous array of type ``ty`` and ``shape`` (intp values) on ``src``'s data,
    sharing its memory-manager handle (a new reference, as a view is)."""
    out = context.make_array(ty)(context, builder)
    strides, stride = [], src.itemsize
    for n in reversed(shape):
        strides.insert(0, stride)
        stride = builder.mul(stride, n)
    context.populate_array(out, data=src.data, shape=cgutils.pack_array(builder, shape),
                           strides=cgutils.pack_array(builder, strides),
                           itemsize=src.itemsize, meminfo=src.meminfo)
    return impl_ret_borrowed(context, builder, ty, out._getvalue())


@intrinsic
def as_matrix(typingctx, buf, n_rows, n_cols):
    """The first ``n_rows * n_cols`` entries of the C-contiguous 1-d ``buf`` as a
    row-major (n_rows, n_cols) view. What ``buf[:n_rows * n_cols].reshape(n_rows,
    n_cols)`` gives, without the call to Numba's reshape helper that each reshape makes
    (a few per batch step, measured ~6 % of a one-sample step). The caller guarantees
    the size."""
    if not (isinstance(buf, types.Array) and buf.ndim == 1 and buf.layout == "C"):
        return None
    ret = types.Array(buf.dtype, 2, "C")

    def codegen(context, builder, sig, args):
        src = context.make_array(sig.args[0])(context, builder, args[0])
        shape = [context.cast(builder, v, t, types.intp)
                 for v, t in zip(args[1:], sig.args[1:])]
        return _view(context, builder, ret, src, shape)

    return ret(buf, n_rows, n_cols), codegen


@intrinsic
def as_flat(typingctx, a):
    """The C-contiguous array ``a`` as a flat 1-d view (``a.reshape(-1)``, without
    the reshape helper's call)."""
    if not (isinstance(a, types.Array) and a.layout == "C"):
        return None
    ret = types.Array(a.dtype, 1, "C")

    def codegen(context, builder, sig, args):
        src = context.make_array(sig.args[0])(context, builder, args[0])
        return _view(context, builder, ret, src, [src.nitems])

    return ret(a), codegen


@intrinsic
def prefetch(typingctx, a, i):
    """A hint: start loading the cache line of entry ``i`` of the C-contiguous ``a``'s
    flat data (``__builtin_prefetch(p, 0, 3)`` in C). Never faults; does nothing else."""
    if not (isinstance(a, types.Array) and a.layout == "C" and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        arr = context.make_array(sig.args[0])(context, builder, args[0])
        k = context.cast(builder, args[1], sig.args[1], types.intp)
        ptr = builder.gep(arr.data, [k])
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, keep in all levels, data
        return context.get_dummy_value()

    return types.none(a, i), codegen

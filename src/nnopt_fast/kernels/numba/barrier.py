"""Atomics and the spin-then-yield barrier of the Numba backend's threaded epochs.

The workers are compiled functions that release the GIL, each on a thread of its own
(:func:`nnopt_fast.kernels.team.run_team`); no Numba threading layer is involved. The
atomics are LLVM instructions emitted by intrinsics, so that the barrier is compiled,
inlined and cached with the workers that call it.

The barrier mirrors ``csrc/nn_parallel.c``: a waiting thread spins a few microseconds
(a partner on an idle core arrives in that time), then yields its core between checks
(on a machine busier than its cores, a longer spin keeps the partner from the core it
waits for); it watches ``stop[1]`` so that a team whose worker failed, or which was asked
to stop at once, never hangs.
"""

import platform
import sys

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .._numba_config import jit

__all__ = ["BARRIER_WORDS", "atomic_add", "atomic_cas", "load_acquire", "store_release",
           "load_relaxed", "barrier_init", "barrier_wait"]

#: int32 words of one barrier: arrival count, generation, team size, then padding to 128
#: bytes (two cache lines) so that no other data shares its lines.
BARRIER_WORDS = 32
_COUNT, _GEN, _SIZE = 0, 1, 2

#: Spins before yielding: ~10 us with the pause instruction of recent x86 cores.
_SPINS = 256

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
_YIELD = "SwitchToThread" if sys.platform == "win32" else "sched_yield"


def _element_pointer(context, builder, array_type, array, index):
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index],
                                    wraparound=False, boundscheck=False)


def _check_int_array(array, index):
    return (isinstance(array, types.Array) and isinstance(array.dtype, types.Integer)
            and array.ndim == 1 and isinstance(index, types.Integer))


@intrinsic
def atomic_add(typingctx, array, index, value):
    """``array[index] += value`` atomically (acquire-release); returns the new value."""
    if not _check_int_array(array, index):
        return None
    sig = array.dtype(array, index, value)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        inc = context.cast(builder, args[2], sig.args[2], sig.args[0].dtype)
        old = builder.atomic_rmw("add", ptr, inc, "acq_rel")
        return builder.add(old, inc)

    return sig, codegen


@intrinsic
def atomic_cas(typingctx, array, index, expected, value):
    """``array[index] = value`` if it equals ``expected``, atomically (acquire-release);
    returns the value found."""
    if not _check_int_array(array, index):
        return None
    sig = array.dtype(array, index, expected, value)

    def codegen(context, builder, sig, args):
        ty = sig.args[0].dtype
        ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        old = context.cast(builder, args[2], sig.args[2], ty)
        new = context.cast(builder, args[3], sig.args[3], ty)
        pair = builder.cmpxchg(ptr, old, new, "acq_rel", "acquire")
        return builder.extract_value(pair, 0)

    return sig, codegen


def _load(ordering):
    @intrinsic
    def load(typingctx, array, index):
        if not _check_int_array(array, index):
            return None
        sig = array.dtype(array, index)

        def codegen(context, builder, sig, args):
            ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
            return builder.load_atomic(ptr, ordering, sig.args[0].dtype.bitwidth // 8)

        return sig, codegen

    return load


def _store(ordering):
    @intrinsic
    def store(typingctx, array, index, value):
        if not _check_int_array(array, index):
            return None
        sig = types.void(array, index, value)

        def codegen(context, builder, sig, args):
            ty = sig.args[0].dtype
            ptr = _element_pointer(context, builder, sig.args[0], args[0], args[1])
            val = context.cast(builder, args[2], sig.args[2], ty)
            builder.store_atomic(val, ptr, ordering, ty.bitwidth // 8)
            return context.get_dummy_value()

        return sig, codegen

    return store


#: ``array[index]``, an acquire load: later reads see what was written before the
#: release store that wrote the value.
load_acquire = _load("acquire")
#: ``array[index]``, an atomic load without ordering (for flags other threads raise).
load_relaxed = _load("monotonic")
#: ``array[index] = value``, a release store: earlier writes are visible to the thread
#: that acquire-loads the value.
store_release = _store("release")
store_relaxed = _store("monotonic")


@intrinsic
def _cpu_relax(typingctx):
    """The x86 ``pause`` hint in a spin loop (nothing elsewhere)."""
    sig = types.void()

    def codegen(context, builder, sig, args):
        if _X86:
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _yield_core(typingctx):
    """Give the core to another thread (``sched_yield``, ``SwitchToThread`` on Windows)."""
    sig = types.void()

    def codegen(context, builder, sig, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(32), []),
                                            _YIELD)
        builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


def barrier_init(barrier, n_threads):
    """Reset ``barrier`` (int32 words, see :data:`BARRIER_WORDS`) for a team of
    ``n_threads``, before its workers start."""
    barrier[:] = 0
    barrier[_SIZE] = n_threads


@jit(helper=True)
def barrier_wait(barrier, stop):
    """Wait until the whole team arrives; a full memory barrier (acquire + release).

    Returns False, or True without waiting further once ``stop[1]`` is raised (the
    barrier is then unusable for this epoch).
    """
    n = barrier[_SIZE]
    if n <= 1:
        return load_relaxed(stop, 1) != 0
    gen = load_acquire(barrier, _GEN)
    if atomic_add(barrier, _COUNT, 1) == n:
        # Last to arrive: reset the count (no waiter reads it), then release the others.
        store_relaxed(barrier, _COUNT, 0)
        store_release(barrier, _GEN, gen + 1)
        return False
    i = 0
    while load_acquire(barrier, _GEN) == gen:
        if load_relaxed(stop, 1) != 0:
            return True
        if i < _SPINS:
            _cpu_relax()
        else:
            _yield_core()
        i += 1
    return False

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

__all__ = ["BARRIER_WORDS", "atomic_add", "atomic_cas", "load_acquire", "load_relaxed",
           "store_release", "store_relaxed", "barrier_init", "barrier_wait"]

#: int32 words of one barrier: arrival count, generation, team size, then padding to 128
#: bytes (two cache lines) so that no other data shares its lines.
BARRIER_WORDS = 32
_COUNT, _GEN, _SIZE = 0, 1, 2

#: Spins before yielding: ~10 us with the pause instruction of recent x86 cores.
_SPINS = 256

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
_YIELD = "SwitchToThread" if sys.platform == "win32" else "sched_yield"


def _on_element(n_values, emit, returns=True):
    """An intrinsic ``op(array, index, *values)`` on element ``index`` of a 1-D integer
    array: ``emit(builder, ptr, values, bytes)`` writes the LLVM instructions on its
    address (the values cast to the array's dtype) and gives the result (the element's
    type when ``returns``, else none)."""

    def typing(array, index, values):
        if not (isinstance(array, types.Array) and isinstance(array.dtype, types.Integer)
                and array.ndim == 1 and isinstance(index, types.Integer)):
            return None
        sig = (array.dtype if returns else types.void)(array, index, *values)

        def codegen(context, builder, sig, args):
            aty, ty = sig.args[0], sig.args[0].dtype
            ary = context.make_array(aty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aty, ary, [args[1]],
                                           wraparound=False, boundscheck=False)
            vals = [context.cast(builder, v, t, ty) for v, t in zip(args[2:], sig.args[2:])]
            out = emit(builder, ptr, vals, ty.bitwidth // 8)
            return out if returns else context.get_dummy_value()

        return sig, codegen

    # Numba's intrinsics take a fixed number of arguments.
    if n_values == 0:
        return intrinsic(lambda typingctx, array, index: typing(array, index, ()))
    if n_values == 1:
        return intrinsic(lambda typingctx, array, index, value:
                         typing(array, index, (value,)))
    return intrinsic(lambda typingctx, array, index, expected, value:
                     typing(array, index, (expected, value)))


def _add(builder, ptr, values, size):
    return builder.add(builder.atomic_rmw("add", ptr, values[0], "acq_rel"), values[0])


def _cas(builder, ptr, values, size):
    return builder.extract_value(builder.cmpxchg(ptr, *values, "acq_rel", "acquire"), 0)


#: ``atomic_add(array, index, value)``: ``array[index] += value`` atomically
#: (acquire-release); returns the new value.
atomic_add = _on_element(1, _add)
#: ``atomic_cas(array, index, expected, value)``: ``array[index] = value`` if it equals
#: ``expected``, atomically (acquire-release); returns the value found.
atomic_cas = _on_element(2, _cas)
#: ``load_acquire(array, index)``: an acquire load; later reads see what was written
#: before the release store of the value read.
load_acquire = _on_element(0, lambda b, ptr, v, size: b.load_atomic(ptr, "acquire", size))
#: ``load_relaxed(array, index)``: an atomic load without ordering (flags other threads
#: raise).
load_relaxed = _on_element(0, lambda b, ptr, v, size: b.load_atomic(ptr, "monotonic", size))
#: ``store_release(array, index, value)``: earlier writes are visible to the thread that
#: acquire-loads the value.
store_release = _on_element(
    1, lambda b, ptr, v, size: b.store_atomic(v[0], ptr, "release", size), returns=False)
#: ``store_relaxed(array, index, value)``: an atomic store without ordering.
store_relaxed = _on_element(
    1, lambda b, ptr, v, size: b.store_atomic(v[0], ptr, "monotonic", size), returns=False)


def _calls(symbol, return_type):
    """An intrinsic without arguments that calls the C function ``symbol`` (nothing when
    None), of return type ``return_type`` (ignored)."""

    @intrinsic
    def call(typingctx):
        def codegen(context, builder, sig, args):
            if symbol is not None:
                fnty = ir.FunctionType(return_type, [])
                builder.call(cgutils.get_or_insert_function(builder.module, fnty, symbol), [])
            return context.get_dummy_value()

        return types.void(), codegen

    return call


#: The x86 ``pause`` hint of a spin loop (nothing elsewhere).
_cpu_relax = _calls("llvm.x86.sse2.pause" if _X86 else None, ir.VoidType())
#: Give the core to another thread (``sched_yield``; ``SwitchToThread`` on Windows).
_yield_core = _calls(_YIELD, ir.IntType(32))


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

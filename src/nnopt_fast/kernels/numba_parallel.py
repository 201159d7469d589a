"""Multithreaded epochs of the Numba backend: sync data-parallel batches and Hogwild."""

import ctypes

import numba
import numpy as np
from numba import prange

from . import numba_backend as nb_
from ._numba_config import FASTMATH, choose_cache_dir
from .reference import ACTIVATIONS, OPTIMIZERS, OUTPUTS

__all__ = ["run_epoch_parallel"]

# Per-thread buffers start on, and are padded to, 128 bytes (two cache lines: x86 cores
# prefetch lines in adjacent pairs), so no two threads ever write the same line.
_ALIGN_BYTES = 128

# The spin-then-yield barrier of csrc/nn_parallel.c (built into the Cython extension):
# a barrier per batch inside one parallel loop per epoch, instead of a fork and join of
# Numba's OpenMP pool per batch, whose spinning join was ~50x slower on a loaded machine.
_cython = None
if _cython is not None:
    _lib = ctypes.CDLL(_cython.__file__)
    _bar_set_team = _lib.nn_bar_set_team
    _bar_set_team.argtypes = [ctypes.c_void_p, ctypes.c_int]
    _bar_set_team.restype = None
    _bar_wait = _lib.nn_bar_wait
    _bar_wait.argtypes = [ctypes.c_void_p]
    _bar_wait.restype = None

_pjit = numba.njit(parallel=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy",
                   cache=choose_cache_dir(__file__)[0])
# Functions that call the ctypes barrier cannot be cached (Numba refuses ctypes pointers).
_pjit_nocache = numba.njit(parallel=True, nogil=True, fastmath=set(FASTMATH),
                           error_model="numpy")


@nb_.jit
def _reduce_update_chunk(w, T, nb, P, G, Gs, V, Mo, Vo, offs, sizes, opt, lr, mu, b1, b2,
                         adam_eps, t, c2, c1, l1_sub, l1_prox, want_penalty):
    """Chunk ``w`` of ``T`` of every parameter segment: ``G = sum of the slices' Gs`` (in
    slice order, empty slices skipped), then the optimizer step (:func:`update_range`).

    Chunks are multiples of 32 elements, so no two workers write one cache line. Returns
    ``(sum W^2, sum |W|)`` of the chunk's weights before the step.
    """
    s2 = 0.0
    s1 = 0.0
    n_layers = sizes.shape[0] - 1
    for seg in range(2 * n_layers):
        l = seg // 2
        lo = offs[l, seg % 2]
        n_seg = sizes[l + 1] * (sizes[l] if seg % 2 == 0 else 1)
        per = ((n_seg + T - 1) // T + 31) // 32 * 32
        a = lo + min(n_seg, w * per)
        b = lo + min(n_seg, (w + 1) * per)
        if b <= a:
            continue
        first = True
        for s in range(T):
            if nb * (s + 1) // T > nb * s // T:
                if first:
                    G[a:b] = Gs[s, a:b]
                    first = False
                else:
                    for j in range(a, b):
                        G[j] = G[j] + Gs[s, j]
        x2, x1 = nb_.update_range(P, G, V, Mo, Vo, a, b, seg % 2 == 0, opt, lr, mu, b1, b2,
                                  adam_eps, t, c2, c1, l1_sub and c1 != 0.0,
                                  l1_prox and c1 != 0.0, want_penalty)
        s2 += x2
        s1 += x1
    return s2, s1


@_pjit
def _sync_epoch(X, y, Y, sw, has_sw, perm, B, step0, t0, P, G, Gs, lsums, V, Mo, Vo, offs,
                sizes, hoff, act, out_code, eps, drop_on, layer_keys, drop_thr, drop_scale,
                Xb, Hb, Ab, Mb, Zb, Db, opt, lr, mu, b1, b2, adam_eps, l2, l1, penalty_div,
                l1_sub, l1_prox):
    """numba_backend._epoch with each batch cut into ``T = Gs.shape[0]`` row slices.

    Slice ``s`` (rows ``nb s / T`` to ``nb (s+1) / T``) runs forward and backward in its
    own rows of the shared workspace blocks, with its row offset keying the dropout masks,
    and writes ``A_s^T D_s / S`` (``S`` = weight of the whole batch) into row ``s`` of
    ``Gs``. The slices are then summed in order 0..T-1 into ``G`` and one update follows,
    chunk by chunk as in :func:`_sync_epoch_barrier` (so both give the same bits): the
    result depends on T only, never on timing.
    """
    n = perm.shape[0]
    T = Gs.shape[0]
    n_par = P.shape[0]
    data = 0.0
    pens = np.zeros((T, 1))
    n_steps = 0
    want_penalty = l2 != 0.0 or l1 != 0.0
    k = 0
    for start in range(0, n, B):
        nb = min(B, n - start)
        S = nb_._batch_weight(sw, has_sw, perm, start, nb)
        if S == 0.0:
            return data, _sum_pens(pens, T), n_steps, 2
        scale = X.dtype.type(1.0 / S)
        for s in prange(T):
            r0 = nb * s // T
            r1 = nb * (s + 1) // T
            lsums[s] = 0.0
            if r1 > r0:
                lsums[s] = nb_.gradient_rows(
                    X, y, Y, sw, has_sw, perm, start, r0, r1, step0 + k, P, Gs[s, :n_par],
                    offs, sizes, hoff, act, out_code, eps, drop_on, layer_keys, drop_thr,
                    drop_scale, Xb, Hb, Ab, Mb, Zb, Db, scale)
        lsum = 0.0
        for s in range(T):
            lsum += lsums[s]
        if not np.isfinite(lsum):
            return data, _sum_pens(pens, T), n_steps, 1
        d = penalty_div if penalty_div > 0.0 else S
        c2 = l2 / d
        c1 = l1 / (2.0 * d)
        data += nb * (lsum / S)
        # The chunks of the barrier version, one after the other: the same arithmetic.
        for w in range(T):
            s2, s1 = _reduce_update_chunk(w, T, nb, P, G, Gs, V, Mo, Vo, offs, sizes, opt, lr,
                                          mu, b1, b2, adam_eps, t0 + k + 1, c2, c1, l1_sub,
                                          l1_prox, want_penalty)
            if want_penalty:
                pens[w, 0] += nb * ((0.5 * l2 * s2 + 0.5 * l1 * s1) / d)
        n_steps += 1
        k += 1
    return data, _sum_pens(pens, T), n_steps, 0


@nb_.jit
def _sum_pens(pens, T):
    pen = 0.0
    for w in range(T):
        pen += pens[w, 0]
    return pen


@_pjit_nocache
def _sync_epoch_barrier(X, y, Y, sw, has_sw, perm, B, step0, t0, P, G, Gs, lsums, pens, out,
                        bar, V, Mo, Vo, offs, sizes, hoff, act, out_code, eps, drop_on,
                        layer_keys, drop_thr, drop_scale, Xb, Hb, Ab, Mb, Zb, Db, opt, lr, mu,
                        b1, b2, adam_eps, l2, l1, penalty_div, l1_sub, l1_prox):
    """:func:`_sync_epoch` with one parallel loop per epoch: worker ``w`` of ``T`` owns
    slice ``w`` of every batch; a barrier after the gradients; then worker ``w`` reduces
    (slices in order) and updates its chunk of every parameter segment (multiples of 32
    elements, so no two workers write one cache line); a barrier after the update. Same
    arithmetic as _sync_epoch, elementwise.

    Needs ``T`` Numba threads (each worker on its own thread, or the barrier never
    opens): the caller checks. ``out`` gets (data loss, penalty loss, steps, status);
    ``pens[w, 0]`` worker w's share of the penalty loss.
    """
    n = perm.shape[0]
    T = Gs.shape[0]
    n_par = P.shape[0]
    want_penalty = l2 != 0.0 or l1 != 0.0
    for w in prange(T):
        _bar_set_team(bar.ctypes, T)
        k = 0
        for start in range(0, n, B):
            nb = min(B, n - start)
            S = nb_._batch_weight(sw, has_sw, perm, start, nb)
            if S == 0.0:
                if w == 0:
                    out[3] = 2.0
                break
            scale = X.dtype.type(1.0 / S)
            r0 = nb * w // T
            r1 = nb * (w + 1) // T
            lsums[w] = 0.0
            if r1 > r0:
                lsums[w] = nb_.gradient_rows(
                    X, y, Y, sw, has_sw, perm, start, r0, r1, step0 + k, P, Gs[w, :n_par],
                    offs, sizes, hoff, act, out_code, eps, drop_on, layer_keys, drop_thr,
                    drop_scale, Xb, Hb, Ab, Mb, Zb, Db, scale)
            _bar_wait(bar.ctypes)
            lsum = 0.0
            for s in range(T):
                lsum += lsums[s]
            if not np.isfinite(lsum):
                # Every worker sees the same sum and stops: none is left at a barrier.
                if w == 0:
                    out[3] = 1.0
                break
            d = penalty_div if penalty_div > 0.0 else S
            c2 = l2 / d
            c1 = l1 / (2.0 * d)
            if w == 0:
                out[0] += nb * (lsum / S)
                out[2] += 1.0
            s2, s1 = _reduce_update_chunk(w, T, nb, P, G, Gs, V, Mo, Vo, offs, sizes, opt, lr,
                                          mu, b1, b2, adam_eps, t0 + k + 1, c2, c1, l1_sub,
                                          l1_prox, want_penalty)
            if want_penalty:
                pens[w, 0] += nb * ((0.5 * l2 * s2 + 0.5 * l1 * s1) / d)
            _bar_wait(bar.ctypes)
            k += 1
    for w in range(T):
        out[1] += pens[w, 0]
    return 0


@_pjit
def _hogwild_epoch(X, y, Y, sw, has_sw, perm, B, step0, t0, P, Gs, acc, status, V, Mo, Vo,
                   offs, sizes, hoff, act, out_code, eps, drop_on, layer_keys, drop_thr,
                   drop_scale, Xbs, Hbs, Abs_, Mbs, Zbs, Dbs, lens, opt, lr, mu, b1, b2,
                   adam_eps, l2, l1, penalty_div, l1_sub, l1_prox):
    """Hogwild: worker ``w`` of ``T`` runs batches w, w + T, ... with full SGD steps on
    the shared ``P`` (and optimizer state), without locks; its own workspace rows and
    gradient buffer; dropout keys and Adam's step from the global batch number.

    ``acc[w]`` gets (data loss, penalty loss, steps); ``status[w]`` 1 or 2 if that worker
    stopped on a non-finite loss or a zero-weight batch. Row ``w`` of ``Xbs`` ... ``Dbs``
    is worker w's copy of the workspace block, ``lens`` their lengths.
    """
    n = perm.shape[0]
    T = Gs.shape[0]
    n_par = P.shape[0]
    n_batches = (n + B - 1) // B
    want_penalty = l2 != 0.0 or l1 != 0.0
    for w in prange(T):
        G = Gs[w, :n_par]
        for k in range(w, n_batches, T):
            if status.max() != 0:
                break
            start = k * B
            nb = min(B, n - start)
            S = nb_._batch_weight(sw, has_sw, perm, start, nb)
            if S == 0.0:
                status[w] = 2
                break
            scale = X.dtype.type(1.0 / S)
            lsum = nb_.gradient_rows(
                X, y, Y, sw, has_sw, perm, start, 0, nb, step0 + k, P, G, offs, sizes, hoff,
                act, out_code, eps, drop_on, layer_keys, drop_thr, drop_scale,
                Xbs[w, :lens[0]], Hbs[w, :lens[1]], Abs_[w, :lens[2]], Mbs[w, :lens[3]],
                Zbs[w, :lens[4]], Dbs[w, :lens[5]], scale)
            if not np.isfinite(lsum):
                status[w] = 1
                break
            d = penalty_div if penalty_div > 0.0 else S
            c2 = l2 / d
            c1 = l1 / (2.0 * d)
            s2, s1 = nb_.update(P, G, V, Mo, Vo, offs, sizes, opt, lr, mu, b1, b2, adam_eps,
                                t0 + k + 1, c2, c1, l1_sub and c1 != 0.0,
                                l1_prox and c1 != 0.0, want_penalty)
            acc[w, 0] += nb * (lsum / S)
            if want_penalty:
                acc[w, 1] += nb * ((0.5 * l2 * s2 + 0.5 * l1 * s1) / d)
            acc[w, 2] += 1.0
    return 0


def _padded(n_rows, n_cols, dtype):
    """Zeros of shape (n_rows, stride >= n_cols); each row starts on a 128-byte boundary."""
    dt = np.dtype(dtype)
    per = _ALIGN_BYTES // dt.itemsize
    stride = -(-max(int(n_cols), 1) // per) * per
    raw = np.zeros(n_rows * stride + per, dtype=dt)
    shift = ((-raw.ctypes.data) % _ALIGN_BYTES) // dt.itemsize
    return raw[shift:shift + n_rows * stride].reshape(n_rows, stride)


def _par_buffers(ws, n_threads, hogwild, n_params, dtype):
    """Per-thread buffers of this run, cached on the numba workspace object."""
    key = (n_threads, hogwild, n_params)
    if getattr(ws, "par_key", None) != key:
        ws.par_grads = _padded(n_threads, n_params, dtype)
        ws.par_lsums = _padded(1, n_threads, np.float64)[0, :n_threads]
        ws.par_acc = _padded(n_threads, 16, np.float64)
        ws.par_status = np.zeros(n_threads, dtype=np.int64)
        ws.par_out = np.zeros(4, dtype=np.float64)
        # nn_barrier: 32 int32 = 128 bytes (count, generation, team size, padding).
        ws.par_bar = _padded(1, 32, np.int32)[0]
        if hogwild:
            blocks = (ws.Xb, ws.Hb, ws.Ab, ws.Mb, ws.Zb, ws.Db)
            # One padded row per thread; the kernel takes the first len(block) entries.
            ws.par_blocks = tuple(_padded(n_threads, a.size, a.dtype) for a in blocks)
            ws.par_lens = np.array([a.size for a in blocks], dtype=np.int64)
        ws.par_key = key
    return ws


def run_epoch_parallel(cfg, state, X, T, sw, perm, lr, step0):
    """One epoch on ``cfg.n_threads`` Numba threads (``cfg.parallel`` = sync or hogwild).

    Same contract as :func:`nnopt_fast.kernels.numba_backend.run_epoch`. Numba's thread
    count and BLAS's must be set by the caller (``nnopt_fast.train.threads``); the slice
    layout of the sync mode depends on ``cfg.n_threads`` only.

    Raises
    ------
    ZeroDivisionError
        When a batch has zero total sample weight.
    """
    X, y, Y, swa, has_sw, perm = nb_.epoch_inputs(cfg, state, X, T, sw, perm)
    dt = X.dtype
    ws = nb_._workspace(cfg, state, dt)
    n_threads = int(cfg.n_threads)
    hogwild = cfg.parallel == "hogwild"
    _par_buffers(ws, n_threads, hogwild, state.params.size, dt)
    common = (ACTIVATIONS[cfg.activation], OUTPUTS[cfg.output], ws.eps, ws.drop_on,
              ws.layer_keys, ws.drop_thr, ws.drop_scale)
    hyper = (OPTIMIZERS[cfg.optimizer], float(lr), float(cfg.momentum), float(cfg.beta1),
             float(cfg.beta2), float(cfg.epsilon), float(cfg.l2), float(cfg.l1),
             float(cfg.penalty_div), cfg.l1_method == "subgradient",
             cfg.l1_method == "proximal")
    if hogwild:
        ws.par_acc[...] = 0.0
        ws.par_status[...] = 0
        _hogwild_epoch(X, y, Y, swa, has_sw, perm, ws.B, int(step0), int(state.t),
                       state.params, ws.par_grads, ws.par_acc, ws.par_status, state.velocity,
                       state.m, state.v, state.offsets, ws.sizes, ws.hoff, *common,
                       *ws.par_blocks, ws.par_lens, *hyper)
        if (ws.par_status == 2).any():
            raise ZeroDivisionError("a batch of the epoch has zero total sample weight")
        acc = ws.par_acc[:, :3].sum(axis=0)
        status = int(ws.par_status.max())
        return float(acc[0]), float(acc[1]), int(acc[2]), status
    if _cython is not None and numba.get_num_threads() >= n_threads:
        ws.par_out[...] = 0.0
        ws.par_bar[...] = 0
        ws.par_bar[2] = n_threads
        ws.par_acc[...] = 0.0
        _sync_epoch_barrier(
            X, y, Y, swa, has_sw, perm, ws.B, int(step0), int(state.t), state.params,
            state.grads, ws.par_grads, ws.par_lsums, ws.par_acc, ws.par_out, ws.par_bar,
            state.velocity,
            state.m, state.v, state.offsets, ws.sizes, ws.hoff, *common, ws.Xb, ws.Hb, ws.Ab,
            ws.Mb, ws.Zb, ws.Db, *hyper)
        data, pen, n_steps, status = ws.par_out
    else:
        # No barrier (no extension) or fewer Numba threads than workers, with which the
        # barrier would never open: a fork and join per batch.
        data, pen, n_steps, status = _sync_epoch(
            X, y, Y, swa, has_sw, perm, ws.B, int(step0), int(state.t), state.params,
            state.grads, ws.par_grads, ws.par_lsums, state.velocity, state.m, state.v,
            state.offsets, ws.sizes, ws.hoff, *common, ws.Xb, ws.Hb, ws.Ab, ws.Mb, ws.Zb,
            ws.Db, *hyper)
    if status == 2:
        raise ZeroDivisionError(f"batch {int(n_steps)} of the epoch has zero total sample "
                                "weight")
    return float(data), float(pen), int(n_steps), int(status)

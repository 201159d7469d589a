# Included at the end of _cython.pyx: uses its Plan, _rgemm, _forward_backward,
# _weight_grads, _update, _fused_sgd_update, _colsum, _optimizer, _l1_prox, _penalty,
# _penalty_sums and _prefetch_batch.
"""Multithreaded epochs: deterministic data-parallel mini-batches ("sync") and Hogwild."""

from cython.parallel cimport parallel

import numpy as _np

cdef extern from "nn_parallel.h" nogil:
    ctypedef struct nn_barrier:
        pass
    void nn_bar_init(nn_barrier *b, int n)
    void nn_bar_set_team(nn_barrier *b, int n)
    void nn_bar_wait(nn_barrier *b)
    int nn_par_team_size()
    int nn_par_thread_num()

# Per-thread buffers start on, and are padded to, 128-byte boundaries: two cache lines,
# since the adjacent-line prefetcher of x86 cores pulls lines in pairs.
cdef enum:
    PAR_ALIGN_BYTES = 128
    # doubles per slot of the shared scalar table (128 bytes each)
    PAR_SLOT = 16


cdef inline Py_ssize_t _cut(Py_ssize_t n, int s, int n_parts, Py_ssize_t grain) noexcept nogil:
    """Start of part ``s`` of ``n`` items cut into ``n_parts``, on a multiple of ``grain``
    items when every part still gets at least one grain."""
    cdef Py_ssize_t q = n * s // n_parts
    if s >= n_parts:
        return n
    if n >= grain * n_parts:
        q = q // grain * grain
    return q


cdef inline bint _slice_rows(Py_ssize_t nb, int s, int n_slices, Py_ssize_t *r0,
                             Py_ssize_t *r1) noexcept nogil:
    """Rows ``r0:r1`` of slice ``s`` of an ``nb``-row batch; False if the slice is empty.

    Cuts fall on multiples of 16 rows when the batch allows it: slices of a row-major
    matrix of any width then meet on a cache-line boundary (16 rows x 4 bytes = 64).
    """
    r0[0] = _cut(nb, s, n_slices, 16)
    r1[0] = _cut(nb, s + 1, n_slices, 16)
    return r1[0] > r0[0]


cdef inline Py_ssize_t _row_grain(Py_ssize_t n_cols, Py_ssize_t itemsize) noexcept nogil:
    """Fewest rows of ``n_cols`` items spanning a multiple of 128 bytes."""
    cdef Py_ssize_t a = n_cols * itemsize, b = PAR_ALIGN_BYTES, t
    while b:
        t = a % b
        a = b
        b = t
    return PAR_ALIGN_BYTES // a


cdef void _chunk_update(const Plan *p, floating *P, floating *G, floating *V, floating *Mo,
                        floating *Vo, const floating *buf, Py_ssize_t nb, Py_ssize_t l,
                        Py_ssize_t i0, Py_ssize_t i1, double lr, double c2, double c1,
                        double lr_t, double scale, double *s2, double *s1) noexcept nogil:
    """Weight gradient and optimizer step of rows ``i0:i1`` of ``W_l`` (layer l >= 1).

    ``dW_l[i0:i1] = scale A_{l-1}[:, i0:i1]^T D_l`` is one GEMM over the whole batch (the
    slices' rows in batch order), so a chunk is the serial step restricted to its rows:
    the update is elementwise. Plain SGD folds the update into the GEMM as the serial
    loop does. With ``s2`` not NULL, adds ``sum W^2`` and ``sum |W|`` of the chunk before
    the step (its share of the batch's penalty).
    """
    cdef const int64_t *bo = p.boff
    cdef Py_ssize_t n_in = p.sizes[l - 1], n_out = p.sizes[l], m = i1 - i0
    cdef Py_ssize_t off = p.poff[2 * (l - 1)] + i0 * n_out
    cdef const floating *A = buf + bo[4 * (l - 1)] + i0
    cdef const floating *D = buf + bo[4 * l + 3]
    if m <= 0:
        return
    if s2:
        _penalty_sums(P + off, m * n_out, s2, s1)
    if p.fused_sgd:
        _rgemm(True, False, <int>m, <int>n_out, <int>nb, <floating>(-lr * scale), A,
               <int>n_in, D, <int>n_out, <floating>(1.0 - lr * c2), P + off, <int>n_out)
    else:
        _rgemm(True, False, <int>m, <int>n_out, <int>nb, <floating>scale, A, <int>n_in, D,
               <int>n_out, <floating>0.0, G + off, <int>n_out)
        _optimizer(p.opt, P + off, G + off, V + off if V else NULL, Mo + off if Mo else NULL,
                   Vo + off if Vo else NULL, m * n_out, lr, c2, c1 if p.subgrad else 0.0,
                   p.mu, p.b1, p.b2, lr_t, p.eps)
    if p.prox and c1 != 0.0:
        _l1_prox(P + off, m * n_out, <floating>(lr * c1))


cdef void _bias_update(const Plan *p, floating *P, floating *G, floating *V, floating *Mo,
                       floating *Vo, const floating *buf, Py_ssize_t nb, Py_ssize_t l,
                       double lr, double lr_t, double scale) noexcept nogil:
    """Gradient (column sums of ``D_l`` over the whole batch) and step of bias ``b_l``."""
    cdef Py_ssize_t ob = p.poff[2 * l - 1], n_out = p.sizes[l]
    _colsum(G + ob, buf + p.boff[4 * l + 3], nb, n_out, <floating>scale)
    if p.fused_sgd:
        _optimizer(OPT_SGD, P + ob, G + ob, <floating *>NULL, <floating *>NULL,
                   <floating *>NULL, n_out, lr, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    else:
        _optimizer(p.opt, P + ob, G + ob, V + ob if V else NULL, Mo + ob if Mo else NULL,
                   Vo + ob if Vo else NULL, n_out, lr, 0.0, 0.0, p.mu, p.b1, p.b2, lr_t,
                   p.eps)


cdef double _batch_S(const floating *sw, const int64_t *idx, Py_ssize_t nb) noexcept nogil:
    """Weight sum of the whole batch, in the serial loop's order."""
    cdef double S = 0.0
    cdef Py_ssize_t i
    if not sw:
        return <double>nb
    for i in range(nb):
        S += <double>sw[idx[i]]
    return S


cdef void _sync_worker(const Plan *p, floating *P, floating *G, floating *V, floating *Mo,
                       floating *Vo, floating *buf, int n_slices, const floating *X,
                       const int64_t *y, const floating *Y, const floating *sw,
                       const int64_t *perm, Py_ssize_t n_perm, double lr, int64_t step0,
                       int64_t t0, double *shared, int *status, nn_barrier *bar) noexcept nogil:
    """One thread of the data-parallel epoch; every thread of the team runs it.

    Per batch, two phases split by barriers:

    1. Slice ``s`` of the batch (rows ``nb s / n`` to ``nb (s+1) / n``; thread ``tid``
       runs slices tid, tid + team, ...) runs forward and backward with its row offset
       (the dropout masks are those of the serial loop), into its own rows of the
       batch-sized workspace ``buf``: activations ``A_{l-1}`` and deltas ``D_l``.
    2. Every thread sums the slice losses in slice order (so all agree on divergence);
       then chunk ``c`` of the rows of each weight matrix (same layout as the slices)
       gets its gradient ``A_{l-1}[:, chunk]^T D_l / S`` over the whole batch -- the
       slices' contributions reduced in batch order inside one GEMM, ``S`` being the
       weight of the whole batch -- and its optimizer step; bias ``b_l`` goes to the
       thread of chunk ``l mod n``.

    Each thread thus writes only its own rows of the workspace and its own rows of the
    weights (cuts on cache-line boundaries, see :func:`_slice_rows` and
    :func:`_row_grain`), and no per-thread gradient copies exist: against copies and a
    reduction pass, that saves writing and re-reading ``T`` gradient-sized buffers per
    step. The layout depends only on ``n_slices`` (= n_threads), not on the team OpenMP
    gave, so results are reproducible.
    The penalty loss is summed per thread (slot ``tid``, entry 1) while updating.
    """
    cdef int tid = nn_par_thread_num(), nt = nn_par_team_size(), s, l, c
    cdef Py_ssize_t start = 0, nb, nb_next, r0, r1, k = 0, n_in, grain
    cdef const int64_t *idx
    cdef double S, d, c2, c1, lsum, ls, s2, s1, lr_t = 0.0
    cdef double *res = shared + PAR_SLOT * n_slices
    cdef bint want_pen = p.l2 != 0.0 or p.l1 != 0.0
    nn_bar_set_team(bar, nt)
    if tid == 0:
        res[3] = <double>nt
    while start < n_perm:
        nb = min(p.batch, n_perm - start)
        idx = perm + start
        S = _batch_S(sw, idx, nb)
        if S == 0.0:
            # Every thread sees the same sum and leaves here: no thread waits at a barrier.
            if tid == 0:
                status[0] = 2
                res[2] = <double>k
            return
        d = p.penalty_div if p.penalty_div > 0 else S
        c2 = p.l2 / d
        c1 = p.l1 / (2.0 * d)
        s = tid
        while s < n_slices:
            ls = 0.0
            if _slice_rows(nb, s, n_slices, &r0, &r1):
                _forward_backward(p, P, X, y, Y, sw, idx + r0, r1 - r0, r0, step0 + k, buf,
                                  r0, &ls)
            shared[PAR_SLOT * s] = ls
            s += nt
        nn_bar_wait(bar)
        lsum = 0.0
        for s in range(n_slices):
            lsum += shared[PAR_SLOT * s]
        if not isfinite(lsum):
            # Every thread sees the same sum and leaves here: no thread waits at a barrier.
            if tid == 0:
                status[0] = 1
                res[2] = <double>k
            return
        if tid == 0:
            res[0] += nb * (lsum / S)
        # This thread's rows of the next batch start loading while it updates.
        if start + nb < n_perm:
            nb_next = min(p.batch, n_perm - start - nb)
            s = tid
            while s < n_slices:
                if _slice_rows(nb_next, s, n_slices, &r0, &r1):
                    _prefetch_batch(p, X, y, Y, sw, idx + nb + r0, r1 - r0)
                s += nt
        s2 = 0.0
        s1 = 0.0
        if p.opt == OPT_ADAM:
            lr_t = lr * sqrt(1.0 - pow(p.b2, <double>(t0 + k + 1))) / (
                1.0 - pow(p.b1, <double>(t0 + k + 1)))
        for l in range(1, p.n_layers + 1):
            n_in = p.sizes[l - 1]
            # Row chunks of W_l meet on 128-byte boundaries when there are rows enough.
            grain = _row_grain(p.sizes[l], sizeof(floating))
            c = tid
            while c < n_slices:
                _chunk_update(p, P, G, V, Mo, Vo, buf, nb, l, _cut(n_in, c, n_slices, grain),
                              _cut(n_in, c + 1, n_slices, grain), lr, c2, c1, lr_t, 1.0 / S,
                              &s2 if want_pen else NULL, &s1)
                c += nt
            if (l % n_slices) % nt == tid:
                _bias_update(p, P, G, V, Mo, Vo, buf, nb, l, lr, lr_t, 1.0 / S)
        if want_pen:
            # This thread's share of the penalty (its chunks' weights before the step).
            shared[PAR_SLOT * tid + 1] += nb * (
                (0.5 * p.l2 * s2 if p.l2 != 0.0 else 0.0)
                + (0.5 * p.l1 * s1 if p.l1 != 0.0 else 0.0)) / d
        nn_bar_wait(bar)
        k += 1
        start += nb
    if tid == 0:
        res[2] = <double>k


cdef void _hogwild_worker(const Plan *p, floating *P, floating *V, floating *Mo, floating *Vo,
                          floating *bufs, Py_ssize_t bstride, floating *gbufs,
                          Py_ssize_t gstride, const floating *X, const int64_t *y,
                          const floating *Y, const floating *sw, const int64_t *perm,
                          Py_ssize_t n_perm, double lr, int64_t step0, int64_t t0,
                          double *shared, int *status) noexcept nogil:
    """One Hogwild thread: batches k = tid, tid + team, ... of the epoch, each a full SGD
    step on the shared weights, without locks.

    Dropout keys and Adam's update number use the global batch number k, as in the serial
    loop; only the weights each step sees differ (they race with the other threads).
    Sums go to this thread's own slot of ``shared``.
    """
    cdef int tid = nn_par_thread_num(), nt = nn_par_team_size(), i
    cdef Py_ssize_t start, nb, k = tid
    cdef const int64_t *idx
    cdef double S, d, c2, c1, lsum
    cdef double *acc = shared + PAR_SLOT * tid
    cdef floating *buf = bufs + tid * bstride
    cdef floating *Gt = gbufs + tid * gstride
    cdef floating thr
    cdef bint want_pen = p.l2 != 0.0 or p.l1 != 0.0
    acc[0] = 0.0
    acc[1] = 0.0
    acc[2] = 0.0
    while k * p.batch < n_perm:
        # Another thread diverged: the epoch is void (the caller restores the weights).
        if (<volatile int *>status)[0]:
            return
        start = k * p.batch
        nb = min(p.batch, n_perm - start)
        idx = perm + start
        # This thread's next batch starts loading (shuffled rows miss the caches).
        if start + nt * p.batch < n_perm:
            _prefetch_batch(p, X, y, Y, sw, idx + nt * p.batch,
                            min(p.batch, n_perm - start - nt * p.batch))
        S = _batch_S(sw, idx, nb)
        if S == 0.0:
            (<volatile int *>status)[0] = 2
            return
        d = p.penalty_div if p.penalty_div > 0 else S
        c2 = p.l2 / d
        c1 = p.l1 / (2.0 * d)
        if _forward_backward(p, P, X, y, Y, sw, idx, nb, 0, step0 + k, buf, 0, &lsum):
            (<volatile int *>status)[0] = 1
            return
        acc[0] += nb * (lsum / S)
        if want_pen:
            acc[1] += nb * _penalty(p, P, d)
        if p.fused_sgd:
            _fused_sgd_update(p, P, Gt, buf, nb, lr, c2, 1.0 / S)
        else:
            _weight_grads(p, buf, nb, <floating>(1.0 / S), Gt)
            _update(p, P, Gt, V, Mo, Vo, lr, c2, c1, t0 + k + 1)
        if p.prox and c1 != 0.0:
            thr = <floating>(lr * c1)
            for i in range(p.n_layers):
                _l1_prox(P + p.poff[2 * i], p.sizes[i] * p.sizes[i + 1], thr)
        acc[2] += 1.0
        k += nt


def _padded_rows(Py_ssize_t n_rows, Py_ssize_t n_cols, dtype):
    """Zeros of shape (n_rows, stride >= n_cols), each row on a 128-byte boundary."""
    dt = _np.dtype(dtype)
    per = PAR_ALIGN_BYTES // dt.itemsize
    stride = -(-max(n_cols, 1) // per) * per
    raw = _np.zeros(n_rows * stride + per, dtype=dt)
    shift = ((-raw.ctypes.data) % PAR_ALIGN_BYTES) // dt.itemsize
    return raw[shift:shift + n_rows * stride].reshape(n_rows, stride)


cdef void _fill_plan(dict plan, Plan *p) except *:
    """``p`` from the plan dict of cython_backend (whose arrays keep the pointers valid)."""
    cdef const int64_t[::1] sizes = plan["sizes"]
    cdef const int64_t[::1] poff = plan["poff"]
    cdef const int64_t[:, ::1] boff = plan["boff"]
    cdef const uint64_t[::1] thr = plan["thr"]
    cdef const double[::1] keep_inv = plan["keep_inv"]
    p.n_layers = plan["n_layers"]
    p.act = plan["act"]
    p.out = plan["out"]
    p.opt = plan["opt"]
    p.fused_sgd = plan["fused_sgd"]
    p.prox = plan["prox"]
    p.subgrad = plan["subgrad"]
    p.batch = plan["batch"]
    p.sizes = &sizes[0]
    p.poff = &poff[0]
    p.boff = &boff[0, 0]
    p.thr = &thr[0]
    p.keep_inv = &keep_inv[0]
    p.seed = plan["seed"]
    p.l2 = plan["l2"]
    p.l1 = plan["l1"]
    p.penalty_div = plan["penalty_div"]
    p.mu = plan["mu"]
    p.b1 = plan["b1"]
    p.b2 = plan["b2"]
    p.eps = plan["eps"]


def run_epoch_parallel(dict ws, int n_threads, bint hogwild, floating[::1] params,
                       floating[::1] grads, floating[::1] velocity, floating[::1] m,
                       floating[::1] v, const floating[:, ::1] X, T, sw,
                       const int64_t[::1] perm, double lr, int64_t step0, int64_t t0):
    """One epoch on ``n_threads`` OpenMP threads, in one parallel region.

    ``ws`` is the run's workspace of ``cython_backend`` (plan, serial buffer): sync runs in
    its buffer, Hogwild adds per-thread activation and gradient buffers on its first call.
    Arguments are validated by ``cython_backend.run_epoch``. BLAS must be single-threaded
    here (``nnopt_fast.train.threads`` arranges it). Returns
    ``(data_loss, penalty_loss, n_steps, status)`` like the serial epoch.
    """
    cdef Plan p
    cdef const int64_t[::1] labels
    cdef const floating[:, ::1] Ymat
    cdef const floating[::1] swv
    cdef const int64_t *y = NULL
    cdef const floating *Y = NULL
    cdef const floating *swp = NULL
    cdef floating[:, ::1] bufs
    cdef floating[:, ::1] gbufs
    cdef floating[::1] sbuf
    cdef double[::1] shared
    cdef int status = 0, s
    cdef nn_barrier bar
    cdef double data = 0.0, pen = 0.0, steps = 0.0
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    _fill_plan(ws["plan"], &p)
    key = (n_threads, hogwild)
    if ws.get("par_key") != key:
        # Hogwild: an activation and a gradient buffer per thread. Sync uses the serial
        # workspace ws["buf"], each thread its own rows of it.
        if hogwild:
            ws["par_bufs"] = _padded_rows(n_threads, ws["buf"].shape[0], ws["dtype"])
            ws["par_grads"] = _padded_rows(n_threads, params.shape[0], ws["dtype"])
        ws["par_shared"] = _padded_rows(1, PAR_SLOT * (n_threads + 1), _np.float64)[0]
        ws["par_key"] = key
    shared = ws["par_shared"]
    shared[:] = 0.0
    if p.out == OUT_SOFTMAX:
        labels = T
        y = &labels[0] if labels.shape[0] > 0 else NULL
    else:
        Ymat = T
        Y = &Ymat[0, 0] if Ymat.shape[0] > 0 else NULL
    if sw is not None:
        swv = sw
        swp = &swv[0] if swv.shape[0] > 0 else NULL
    if perm.shape[0] == 0:
        return 0.0, 0.0, 0, 0
    if hogwild:
        bufs = ws["par_bufs"]
        gbufs = ws["par_grads"]
        with nogil, parallel(num_threads=n_threads):
            _hogwild_worker(&p, &params[0], _data(velocity), _data(m), _data(v), &bufs[0, 0],
                            bufs.shape[1], &gbufs[0, 0], gbufs.shape[1], &X[0, 0], y, Y, swp,
                            &perm[0], perm.shape[0], lr, step0, t0, &shared[0], &status)
        for s in range(n_threads):
            data += shared[PAR_SLOT * s]
            pen += shared[PAR_SLOT * s + 1]
            steps += shared[PAR_SLOT * s + 2]
        return data, pen, <Py_ssize_t>steps, status
    nn_bar_init(&bar, n_threads)
    sbuf = ws["buf"]
    with nogil, parallel(num_threads=n_threads):
        _sync_worker(&p, &params[0], &grads[0], _data(velocity), _data(m), _data(v),
                     &sbuf[0], n_threads, &X[0, 0], y, Y, swp, &perm[0], perm.shape[0], lr,
                     step0, t0, &shared[0], &status, &bar)
    for s in range(n_threads):
        pen += shared[PAR_SLOT * s + 1]
    s = PAR_SLOT * n_threads
    # The team OpenMP gave (fewer threads than asked only slows the epoch down).
    ws["par_team"] = int(shared[s + 3])
    return shared[s], pen, <Py_ssize_t>shared[s + 2], status

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython layer of the compiled backend: BLAS GEMMs, the fused C kernels, the epoch loop."""

from libc.math cimport isfinite, pow, sqrt
from libc.stdint cimport int64_t, uint64_t
from scipy.linalg.cython_blas cimport dgemm, sgemm

cdef extern from "nn_fused.h" nogil:
    const char *nn_simd_path()
    int nn_openmp_threads()
    uint64_t nn_dropout_key(uint64_t seed, uint64_t layer, uint64_t step)
    void nn_prefetch_rows(const void *base, size_t row_bytes, const int64_t *idx, Py_ssize_t n)
    void nn_tanh_array_f32(float *out, const float *x, Py_ssize_t n)
    void nn_tanh_array_f64(double *out, const double *x, Py_ssize_t n)
    void nn_gather_rows_f32(float *out, const float *X, const int64_t *idx, Py_ssize_t n_rows, Py_ssize_t n_cols)
    void nn_gather_rows_f64(double *out, const double *X, const int64_t *idx, Py_ssize_t n_rows, Py_ssize_t n_cols)
    void nn_bias_act_f32(float *H, const float *b, Py_ssize_t n_rows, Py_ssize_t n_cols, int act)
    void nn_bias_act_f64(double *H, const double *b, Py_ssize_t n_rows, Py_ssize_t n_cols, int act)
    void nn_bias_act_dropout_f32(float *H, float *A, float *M, const float *b, Py_ssize_t n_rows, Py_ssize_t n_cols, int act, uint64_t key, int64_t row0, uint64_t thr, float scale)
    void nn_bias_act_dropout_f64(double *H, double *A, double *M, const double *b, Py_ssize_t n_rows, Py_ssize_t n_cols, int act, uint64_t key, int64_t row0, uint64_t thr, double scale)
    void nn_act_backward_f32(float *out, const float *dA, const float *H, const float *M, Py_ssize_t n, int act)
    void nn_act_backward_f64(double *out, const double *dA, const double *H, const double *M, Py_ssize_t n, int act)
    void nn_dropout_mask_f32(float *out, Py_ssize_t n_rows, Py_ssize_t n_cols, uint64_t key, int64_t row0, uint64_t thr, float scale)
    void nn_dropout_mask_f64(double *out, Py_ssize_t n_rows, Py_ssize_t n_cols, uint64_t key, int64_t row0, uint64_t thr, double scale)
    double nn_softmax_xent_f32(float *dZ, const float *Z, const float *b, const int64_t *y, const int64_t *idx, const float *sw, Py_ssize_t n_rows, Py_ssize_t n_cols)
    double nn_softmax_xent_f64(double *dZ, const double *Z, const double *b, const int64_t *y, const int64_t *idx, const double *sw, Py_ssize_t n_rows, Py_ssize_t n_cols)
    double nn_logistic_xent_f32(float *dZ, const float *Z, const float *b, const float *Y, const int64_t *idx, const float *sw, Py_ssize_t n_rows, Py_ssize_t n_cols)
    double nn_logistic_xent_f64(double *dZ, const double *Z, const double *b, const double *Y, const int64_t *idx, const double *sw, Py_ssize_t n_rows, Py_ssize_t n_cols)
    double nn_squared_error_f32(float *dZ, const float *Z, const float *b, const float *Y, const int64_t *idx, const float *sw, Py_ssize_t n_rows, Py_ssize_t n_cols)
    double nn_squared_error_f64(double *dZ, const double *Z, const double *b, const double *Y, const int64_t *idx, const double *sw, Py_ssize_t n_rows, Py_ssize_t n_cols)
    void nn_colsum_f32(float *out, const float *D, Py_ssize_t n_rows, Py_ssize_t n_cols, float scale)
    void nn_colsum_f64(double *out, const double *D, Py_ssize_t n_rows, Py_ssize_t n_cols, double scale)
    void nn_sgd_update_f32(float *W, const float *G, Py_ssize_t n, float lr, float c2, float c1)
    void nn_sgd_update_f64(double *W, const double *G, Py_ssize_t n, double lr, double c2, double c1)
    void nn_momentum_update_f32(float *W, const float *G, float *V, Py_ssize_t n, float lr, float c2, float c1, float mu)
    void nn_momentum_update_f64(double *W, const double *G, double *V, Py_ssize_t n, double lr, double c2, double c1, double mu)
    void nn_nesterov_update_f32(float *W, const float *G, float *V, Py_ssize_t n, float lr, float c2, float c1, float mu)
    void nn_nesterov_update_f64(double *W, const double *G, double *V, Py_ssize_t n, double lr, double c2, double c1, double mu)
    void nn_adam_update_f32(float *W, const float *G, float *M, float *V, Py_ssize_t n, float c2, float c1, float b1, float one_m_b1, float b2, float one_m_b2, float lr_t, float eps)
    void nn_adam_update_f64(double *W, const double *G, double *M, double *V, Py_ssize_t n, double c2, double c1, double b1, double one_m_b1, double b2, double one_m_b2, double lr_t, double eps)
    void nn_l2_decay_step_f32(float *W, const float *dW, Py_ssize_t n, float lr, float c)
    void nn_l2_decay_step_f64(double *W, const double *dW, Py_ssize_t n, double lr, double c)
    void nn_add_penalty_grad_f32(float *dW, const float *W, Py_ssize_t n, float c2, float c1)
    void nn_add_penalty_grad_f64(double *dW, const double *W, Py_ssize_t n, double c2, double c1)
    void nn_l1_prox_f32(float *W, Py_ssize_t n, float thr)
    void nn_l1_prox_f64(double *W, Py_ssize_t n, double thr)
    void nn_penalty_sums_f32(const float *W, Py_ssize_t n, double *s2, double *s1)
    void nn_penalty_sums_f64(const double *W, Py_ssize_t n, double *s2, double *s1)

ctypedef fused floating:
    float
    double

# Codes shared with reference.OUTPUTS / reference.OPTIMIZERS.
cdef enum:
    OUT_SOFTMAX = 0
    OUT_LOGISTIC = 1
    OUT_IDENTITY = 2
    OPT_SGD = 0
    OPT_MOMENTUM = 1
    OPT_NESTEROV = 2
    OPT_ADAM = 3


# ---------------------------------------------------------------------------
# typed dispatch to the C kernels
# ---------------------------------------------------------------------------
cdef inline void _rgemm(bint ta, bint tb, int m, int n, int k, floating alpha,
                        const floating *A, int lda, const floating *B, int ldb,
                        floating beta, floating *C, int ldc) noexcept nogil:
    """Row-major ``C = alpha op(A) op(B) + beta C`` (m x n), through column-major BLAS.

    A row-major matrix is its transpose in column-major order, so ``C^T = op(B)^T op(A)^T``
    is one column-major GEMM with the operands swapped.
    """
    cdef char ca = b'T' if tb else b'N'
    cdef char cb = b'T' if ta else b'N'
    cdef Py_ssize_t i
    if m == 0 or n == 0:
        return
    if k == 0:
        # BLAS would reject the zero leading dimensions; the product is empty.
        for i in range(<Py_ssize_t>m * n):
            C[i] = 0 if beta == 0 else beta * C[i]
        return
    if floating is float:
        sgemm(&ca, &cb, &n, &m, &k, &alpha, <float *>B, &ldb, <float *>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&ca, &cb, &n, &m, &k, &alpha, <double *>B, &ldb, <double *>A, &lda, &beta, C, &ldc)


cdef inline void _bias_act(floating *H, const floating *b, Py_ssize_t r, Py_ssize_t c, int act) noexcept nogil:
    if floating is float:
        nn_bias_act_f32(H, b, r, c, act)
    else:
        nn_bias_act_f64(H, b, r, c, act)


cdef inline void _bias_act_dropout(floating *H, floating *A, floating *M, const floating *b,
                                   Py_ssize_t r, Py_ssize_t c, int act, uint64_t key,
                                   int64_t row0, uint64_t thr, floating scale) noexcept nogil:
    if floating is float:
        nn_bias_act_dropout_f32(H, A, M, b, r, c, act, key, row0, thr, scale)
    else:
        nn_bias_act_dropout_f64(H, A, M, b, r, c, act, key, row0, thr, scale)


cdef inline void _act_backward(floating *out, const floating *dA, const floating *H,
                               const floating *M, Py_ssize_t n, int act) noexcept nogil:
    if floating is float:
        nn_act_backward_f32(out, dA, H, M, n, act)
    else:
        nn_act_backward_f64(out, dA, H, M, n, act)


cdef inline double _loss(int out, floating *dZ, const floating *Z, const floating *b,
                         const int64_t *y, const floating *Y, const int64_t *idx,
                         const floating *sw, Py_ssize_t r, Py_ssize_t c) noexcept nogil:
    if floating is float:
        if out == OUT_SOFTMAX:
            return nn_softmax_xent_f32(dZ, Z, b, y, idx, sw, r, c)
        if out == OUT_LOGISTIC:
            return nn_logistic_xent_f32(dZ, Z, b, Y, idx, sw, r, c)
        return nn_squared_error_f32(dZ, Z, b, Y, idx, sw, r, c)
    else:
        if out == OUT_SOFTMAX:
            return nn_softmax_xent_f64(dZ, Z, b, y, idx, sw, r, c)
        if out == OUT_LOGISTIC:
            return nn_logistic_xent_f64(dZ, Z, b, Y, idx, sw, r, c)
        return nn_squared_error_f64(dZ, Z, b, Y, idx, sw, r, c)


cdef inline void _colsum(floating *out, const floating *D, Py_ssize_t r, Py_ssize_t c,
                         floating scale) noexcept nogil:
    if floating is float:
        nn_colsum_f32(out, D, r, c, scale)
    else:
        nn_colsum_f64(out, D, r, c, scale)


cdef inline void _optimizer(int opt, floating *W, const floating *G, floating *V,
                            floating *Mo, floating *Vo, Py_ssize_t n, double lr, double c2,
                            double c1, double mu, double b1, double b2, double lr_t,
                            double eps) noexcept nogil:
    """One optimizer step on n parameters; scalars are cast to the dtype as NumPy does."""
    if opt == OPT_SGD:
        if floating is float:
            nn_sgd_update_f32(W, G, n, <float>lr, <float>c2, <float>c1)
        else:
            nn_sgd_update_f64(W, G, n, lr, c2, c1)
    elif opt == OPT_MOMENTUM:
        if floating is float:
            nn_momentum_update_f32(W, G, V, n, <float>lr, <float>c2, <float>c1, <float>mu)
        else:
            nn_momentum_update_f64(W, G, V, n, lr, c2, c1, mu)
    elif opt == OPT_NESTEROV:
        if floating is float:
            nn_nesterov_update_f32(W, G, V, n, <float>lr, <float>c2, <float>c1, <float>mu)
        else:
            nn_nesterov_update_f64(W, G, V, n, lr, c2, c1, mu)
    else:
        if floating is float:
            nn_adam_update_f32(W, G, Mo, Vo, n, <float>c2, <float>c1, <float>b1,
                               <float>(1.0 - b1), <float>b2, <float>(1.0 - b2),
                               <float>lr_t, <float>eps)
        else:
            nn_adam_update_f64(W, G, Mo, Vo, n, c2, c1, b1, 1.0 - b1, b2, 1.0 - b2, lr_t, eps)


cdef inline void _l1_prox(floating *W, Py_ssize_t n, floating thr) noexcept nogil:
    if floating is float:
        nn_l1_prox_f32(W, n, thr)
    else:
        nn_l1_prox_f64(W, n, thr)


cdef inline void _penalty_sums(const floating *W, Py_ssize_t n, double *s2, double *s1) noexcept nogil:
    if floating is float:
        nn_penalty_sums_f32(W, n, s2, s1)
    else:
        nn_penalty_sums_f64(W, n, s2, s1)


# ---------------------------------------------------------------------------
# the training step
# ---------------------------------------------------------------------------
cdef struct Plan:
    # Everything the epoch needs besides the arrays; filled once per run_epoch call.
    int n_layers
    int act
    int out
    int opt
    bint fused_sgd      # plain SGD without subgradient L1: decay inside the weight GEMM
    bint prox           # proximal L1 after each step
    bint subgrad        # subgradient L1 in the gradient
    Py_ssize_t batch
    const int64_t *sizes      # (n_layers + 1,) layer widths
    const int64_t *poff       # (n_layers, 2) offsets of W_l, b_l in params / grads
    const int64_t *boff       # (n_layers + 1, 4) offsets of A_l, H_l, M_l, D_l in the workspace
    const uint64_t *thr       # (n_layers + 1,) dropout threshold of hidden layer l
    const double *keep_inv    # (n_layers + 1,) 1 / keep of hidden layer l
    uint64_t seed
    double l2
    double l1
    double penalty_div
    double mu
    double b1
    double b2
    double eps


cdef int _forward_backward(const Plan *p, const floating *P, const floating *X,
                           const int64_t *y, const floating *Y, const floating *sw,
                           const int64_t *idx, Py_ssize_t nb, int64_t row0, int64_t step,
                           floating *buf, Py_ssize_t roff, double *lsum) noexcept nogil:
    """Forward, loss gradient and backward deltas of ``nb`` rows ``X[idx]``.

    The rows are rows ``row0 .. row0 + nb`` of the batch (they key the dropout masks).
    Each matrix of ``buf`` is used from its row ``roff`` on: the data-parallel epoch
    runs its slices into one batch-sized workspace (``roff = row0``), so that the weight
    gradient is one GEMM over the whole batch. Leaves ``D_l`` (unscaled,
    sample-weighted deltas) and ``A_{l-1}`` in ``buf`` for the weight gradients.
    Returns 1 (and skips the backward pass) if the loss is not finite.
    """
    cdef Py_ssize_t L = p.n_layers, l, n_in, n_out
    cdef const int64_t *bo = p.boff
    cdef const int64_t *sz = p.sizes
    cdef floating *H
    cdef floating *D
    cdef const floating *W
    if floating is float:
        nn_gather_rows_f32(buf + bo[0] + roff * sz[0], X, idx, nb, sz[0])
    else:
        nn_gather_rows_f64(buf + bo[0] + roff * sz[0], X, idx, nb, sz[0])
    for l in range(1, L + 1):
        n_in = sz[l - 1]
        n_out = sz[l]
        W = P + p.poff[2 * (l - 1)]
        H = buf + bo[4 * l + 1] + roff * n_out
        _rgemm(False, False, <int>nb, <int>n_out, <int>n_in, <floating>1.0,
               buf + bo[4 * (l - 1)] + roff * n_in, <int>n_in, W, <int>n_out,
               <floating>0.0, H, <int>n_out)
        if l == L:
            break
        if bo[4 * l + 2] >= 0:  # layer l has a dropout mask
            _bias_act_dropout(H, buf + bo[4 * l] + roff * n_out,
                              buf + bo[4 * l + 2] + roff * n_out, P + p.poff[2 * l - 1],
                              nb, n_out, p.act, nn_dropout_key(p.seed, l, step), row0,
                              p.thr[l], <floating>p.keep_inv[l])
        else:
            _bias_act(H, P + p.poff[2 * l - 1], nb, n_out, p.act)
    # The output bias is added inside the loss pass; dZ overwrites Z.
    D = buf + bo[4 * L + 3] + roff * sz[L]
    lsum[0] = _loss(p.out, D, D, P + p.poff[2 * L - 1], y, Y, idx, sw, nb, sz[L])
    if not isfinite(lsum[0]):
        return 1
    for l in range(L, 1, -1):
        n_in = sz[l - 1]
        n_out = sz[l]
        D = buf + bo[4 * (l - 1) + 3] + roff * n_in
        _rgemm(False, True, <int>nb, <int>n_in, <int>n_out, <floating>1.0,
               buf + bo[4 * l + 3] + roff * n_out, <int>n_out, P + p.poff[2 * (l - 1)],
               <int>n_out, <floating>0.0, D, <int>n_in)
        _act_backward(D, D, buf + bo[4 * (l - 1) + 1] + roff * n_in,
                      buf + bo[4 * (l - 1) + 2] + roff * n_in if bo[4 * (l - 1) + 2] >= 0
                      else NULL, nb * n_in, p.act)
    return 0


cdef void _weight_grads(const Plan *p, floating *buf, Py_ssize_t nb, floating scale,
                        floating *G) noexcept nogil:
    """``dW_l = scale A_{l-1}^T D_l``, ``db_l = scale sum(D_l)`` into the gradient buffer G."""
    cdef Py_ssize_t l, n_in, n_out
    cdef const int64_t *bo = p.boff
    for l in range(1, p.n_layers + 1):
        n_in = p.sizes[l - 1]
        n_out = p.sizes[l]
        _rgemm(True, False, <int>n_in, <int>n_out, <int>nb, scale, buf + bo[4 * (l - 1)],
               <int>n_in, buf + bo[4 * l + 3], <int>n_out, <floating>0.0,
               G + p.poff[2 * (l - 1)], <int>n_out)
        _colsum(G + p.poff[2 * l - 1], buf + bo[4 * l + 3], nb, n_out, scale)


cdef void _update(const Plan *p, floating *P, const floating *G, floating *V, floating *Mo,
                  floating *Vo, double lr, double c2, double c1, int64_t t) noexcept nogil:
    """Optimizer step on every layer; weights get the penalty gradient, biases do not."""
    cdef Py_ssize_t l, n_in, n_out, ow, ob
    cdef double lr_t = 0.0
    if p.opt == OPT_ADAM:
        lr_t = lr * sqrt(1.0 - pow(p.b2, <double>t)) / (1.0 - pow(p.b1, <double>t))
    for l in range(p.n_layers):
        n_in = p.sizes[l]
        n_out = p.sizes[l + 1]
        ow = p.poff[2 * l]
        ob = p.poff[2 * l + 1]
        _optimizer(p.opt, P + ow, G + ow, V + ow if V else NULL, Mo + ow if Mo else NULL,
                   Vo + ow if Vo else NULL, n_in * n_out, lr, c2, c1 if p.subgrad else 0.0,
                   p.mu, p.b1, p.b2, lr_t, p.eps)
        _optimizer(p.opt, P + ob, G + ob, V + ob if V else NULL, Mo + ob if Mo else NULL,
                   Vo + ob if Vo else NULL, n_out, lr, 0.0, 0.0, p.mu, p.b1, p.b2, lr_t, p.eps)


cdef void _fused_sgd_update(const Plan *p, floating *P, floating *G, floating *buf,
                            Py_ssize_t nb, double lr, double c2, double scale) noexcept nogil:
    """Plain SGD: ``W <- (1 - lr c2) W - (lr scale) A^T D`` as one GEMM; then the biases."""
    cdef Py_ssize_t l, n_in, n_out
    cdef const int64_t *bo = p.boff
    cdef floating beta = <floating>(1.0 - lr * c2)
    cdef floating alpha = <floating>(-lr * scale)
    for l in range(1, p.n_layers + 1):
        n_in = p.sizes[l - 1]
        n_out = p.sizes[l]
        _rgemm(True, False, <int>n_in, <int>n_out, <int>nb, alpha, buf + bo[4 * (l - 1)],
               <int>n_in, buf + bo[4 * l + 3], <int>n_out, beta, P + p.poff[2 * (l - 1)],
               <int>n_out)
        _colsum(G + p.poff[2 * l - 1], buf + bo[4 * l + 3], nb, n_out, <floating>scale)
        _optimizer(OPT_SGD, P + p.poff[2 * l - 1], G + p.poff[2 * l - 1], <floating *>NULL,
                   <floating *>NULL, <floating *>NULL, n_out, lr, 0.0, 0.0, 0.0, 0.0, 0.0,
                   0.0, 0.0)


cdef double _penalty(const Plan *p, const floating *P, double d) noexcept nogil:
    """``(l2/2 sum ||W||^2 + l1/2 sum |W|) / d`` in double, biases excluded."""
    cdef double s2 = 0.0, s1 = 0.0
    cdef Py_ssize_t l
    for l in range(p.n_layers):
        _penalty_sums(P + p.poff[2 * l], p.sizes[l] * p.sizes[l + 1], &s2, &s1)
    # A zero strength contributes exactly 0, even next to non-finite weights.
    return ((0.5 * p.l2 * s2 if p.l2 != 0.0 else 0.0)
            + (0.5 * p.l1 * s1 if p.l1 != 0.0 else 0.0)) / d


# Prefetch the next batch only while it fits comfortably in L2 next to the current one.
cdef enum:
    PREFETCH_MAX_BYTES = 262144


cdef void _prefetch_batch(const Plan *p, const floating *X, const int64_t *y,
                          const floating *Y, const floating *sw, const int64_t *idx,
                          Py_ssize_t nb) noexcept nogil:
    """Start loading the rows of a coming batch (shuffled rows miss the caches)."""
    cdef size_t row_bytes = <size_t>p.sizes[0] * sizeof(floating)
    if <size_t>nb * row_bytes > PREFETCH_MAX_BYTES:
        return
    # Targets and weights first: they are few lines, and a full queue drops prefetches.
    if y:
        nn_prefetch_rows(y, sizeof(int64_t), idx, nb)
    if Y:
        nn_prefetch_rows(Y, <size_t>p.sizes[p.n_layers] * sizeof(floating), idx, nb)
    if sw:
        nn_prefetch_rows(sw, sizeof(floating), idx, nb)
    nn_prefetch_rows(X, row_bytes, idx, nb)


cdef int _epoch(const Plan *p, floating *P, floating *G, floating *V, floating *Mo,
                floating *Vo, floating *buf, const floating *X, const int64_t *y,
                const floating *Y, const floating *sw, const int64_t *perm, Py_ssize_t n_perm,
                double lr, int64_t step0, int64_t t0, double *out) noexcept nogil:
    """reference.run_epoch over all batches; ``out`` = (data_loss, penalty_loss, n_steps).

    Returns 0, 1 (a batch loss was not finite) or 2 (a batch's sample weights sum to 0;
    ``out[2]`` is its number).
    """
    cdef Py_ssize_t start, nb, i, k = 0
    cdef const int64_t *idx
    cdef double lsum, S, d, c2, c1
    cdef floating thr
    out[0] = 0.0
    out[1] = 0.0
    out[2] = 0.0
    start = 0
    while start < n_perm:
        nb = min(p.batch, n_perm - start)
        idx = perm + start
        if sw:
            S = 0.0
            for i in range(nb):
                S += <double>sw[idx[i]]
            if S == 0.0:
                return 2
        else:
            S = <double>nb
        if start + nb < n_perm:
            _prefetch_batch(p, X, y, Y, sw, idx + nb, min(p.batch, n_perm - start - nb))
        if _forward_backward(p, P, X, y, Y, sw, idx, nb, 0, step0 + k, buf, 0, &lsum):
            return 1
        d = p.penalty_div if p.penalty_div > 0 else S
        c2 = p.l2 / d
        c1 = p.l1 / (2.0 * d)
        out[0] += nb * (lsum / S)
        if p.l2 != 0.0 or p.l1 != 0.0:
            out[1] += nb * _penalty(p, P, d)
        if p.fused_sgd:
            _fused_sgd_update(p, P, G, buf, nb, lr, c2, 1.0 / S)
        else:
            _weight_grads(p, buf, nb, <floating>(1.0 / S), G)
            _update(p, P, G, V, Mo, Vo, lr, c2, c1, t0 + k + 1)
        if p.prox and c1 != 0.0:
            thr = <floating>(lr * c1)
            for i in range(p.n_layers):
                _l1_prox(P + p.poff[2 * i], p.sizes[i] * p.sizes[i + 1], thr)
        k += 1
        out[2] = <double>k
        start += nb
    return 0


cdef inline floating *_data(floating[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] > 0 else NULL


def run_epoch(dict plan, floating[::1] params, floating[::1] grads, floating[::1] velocity,
              floating[::1] m, floating[::1] v, floating[::1] buf, const floating[:, ::1] X,
              T, sw, const int64_t[::1] perm, double lr, int64_t step0, int64_t t0):
    """Run one epoch; see ``cython_backend.run_epoch`` (which validates everything).

    ``plan`` holds the integer/float settings and the int64/uint64/float64 tables built
    by the Python layer. Returns ``(data_loss, penalty_loss, n_steps, status)``.
    """
    cdef Plan p
    cdef const int64_t[::1] sizes = plan["sizes"]
    cdef const int64_t[::1] poff = plan["poff"]
    cdef const int64_t[:, ::1] boff = plan["boff"]
    cdef const uint64_t[::1] thr = plan["thr"]
    cdef const double[::1] keep_inv = plan["keep_inv"]
    cdef const int64_t[::1] labels
    cdef const floating[:, ::1] Ymat
    cdef const floating[::1] swv
    cdef const int64_t *y = NULL
    cdef const floating *Y = NULL
    cdef const floating *swp = NULL
    cdef double out[3]
    cdef int status
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
    with nogil:
        status = _epoch(&p, &params[0], &grads[0], _data(velocity), _data(m), _data(v),
                        &buf[0], &X[0, 0], y, Y, swp, &perm[0], perm.shape[0], lr, step0, t0,
                        out)
    return out[0], out[1], <Py_ssize_t>out[2], status


# ---------------------------------------------------------------------------
# single kernels (argument checking lives in cython_backend.py)
# ---------------------------------------------------------------------------
def simd_path():
    """The target_clones variant chosen on this CPU."""
    return nn_simd_path().decode()


def openmp_threads():
    """OpenMP's thread count (1 in a build without OpenMP)."""
    return nn_openmp_threads()


def dropout_key(uint64_t seed, uint64_t layer, uint64_t step):
    """reference.dropout_key, computed in C."""
    return nn_dropout_key(seed, layer, step)


def tanh(const floating[::1] x, floating[::1] out):
    """``out = tanh(x)`` with the vectorized approximation of the fused kernels."""
    with nogil:
        if floating is float:
            nn_tanh_array_f32(_data(out), &x[0] if x.shape[0] else NULL, x.shape[0])
        else:
            nn_tanh_array_f64(_data(out), &x[0] if x.shape[0] else NULL, x.shape[0])


def dense_forward(const floating[:, ::1] A, const floating[:, ::1] W, const floating[::1] b,
                  int act, floating[:, ::1] out):
    """``out = g(A @ W + b)``: one GEMM, then one fused bias + activation pass."""
    cdef int n = <int>A.shape[0], k = <int>A.shape[1], c = <int>W.shape[1]
    if n == 0 or c == 0:
        return
    with nogil:
        _rgemm(False, False, n, c, k, <floating>1.0, &A[0, 0] if k else NULL, k,
               &W[0, 0] if k else NULL, c, <floating>0.0, &out[0, 0], c)
        _bias_act(&out[0, 0], &b[0], n, c, act)


def act_backward(const floating[::1] H, const floating[::1] dA, int act, floating[::1] out,
                 M):
    """``out = dA * g'(H) [* M]`` on flat arrays; ``M`` is a flat array or None."""
    cdef const floating[::1] Mv
    cdef const floating *mp = NULL
    if H.shape[0] == 0:
        return
    if M is not None:
        Mv = M
        mp = &Mv[0]
    with nogil:
        _act_backward(&out[0], &dA[0], &H[0], mp, H.shape[0], act)


def dropout_mask(uint64_t key, int64_t row0, uint64_t thr, double keep_inv,
                 floating[:, ::1] out):
    """Fill ``out`` with the inverted-dropout mask of stream ``key`` from row ``row0``."""
    if out.shape[0] == 0 or out.shape[1] == 0:
        return
    with nogil:
        if floating is float:
            nn_dropout_mask_f32(&out[0, 0], out.shape[0], out.shape[1], key, row0, thr,
                                <float>keep_inv)
        else:
            nn_dropout_mask_f64(&out[0, 0], out.shape[0], out.shape[1], key, row0, thr,
                                keep_inv)


def output_loss(int code, const floating[:, ::1] Z, T, sw, floating[:, ::1] out):
    """Loss of output ``code`` on ``Z`` (no bias); writes the gradient; returns the sum."""
    cdef const int64_t[::1] labels
    cdef const floating[:, ::1] Ymat
    cdef const floating[::1] swv
    cdef const int64_t *y = NULL
    cdef const floating *Y = NULL
    cdef const floating *swp = NULL
    cdef double total
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        return 0.0
    if code == OUT_SOFTMAX:
        labels = T
        y = &labels[0]
    else:
        Ymat = T
        Y = &Ymat[0, 0]
    if sw is not None:
        swv = sw
        swp = &swv[0]
    with nogil:
        total = _loss(code, &out[0, 0], &Z[0, 0], <const floating *>NULL, y, Y,
                      <const int64_t *>NULL, swp, Z.shape[0], Z.shape[1])
    return total


def dense_backward(const floating[:, ::1] dZ, const floating[:, ::1] A,
                   const floating[:, ::1] W, double scale, floating[:, ::1] dW,
                   floating[::1] db, dA):
    """``dW = scale A^T dZ``, ``db = scale sum(dZ)``, and ``dA = dZ W^T`` unless dA is None."""
    cdef floating[:, ::1] dAv
    cdef int n = <int>dZ.shape[0], c = <int>dZ.shape[1], k = <int>A.shape[1]
    cdef floating s = <floating>scale
    with nogil:
        if k and c:
            _rgemm(True, False, k, c, n, s, &A[0, 0] if n else NULL, k,
                   &dZ[0, 0] if n else NULL, c, <floating>0.0, &dW[0, 0], c)
        if c:
            _colsum(&db[0], &dZ[0, 0] if n else NULL, n, c, s)
    if dA is not None and n and k:
        dAv = dA
        with nogil:
            _rgemm(False, True, n, k, c, <floating>1.0, &dZ[0, 0] if c else NULL, c,
                   &W[0, 0] if c else NULL, c, <floating>0.0, &dAv[0, 0], k)


def add_penalty_grad(floating[::1] dW, const floating[::1] W, double c2, double c1):
    """``dW += c2 W + c1 sign(W)`` in place (a zero coefficient skips its term)."""
    if dW.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            nn_add_penalty_grad_f32(&dW[0], &W[0], dW.shape[0], <float>c2, <float>c1)
        else:
            nn_add_penalty_grad_f64(&dW[0], &W[0], dW.shape[0], c2, c1)


def l2_decay_step(floating[::1] W, const floating[::1] dW, double lr, double c):
    """``W -= lr (dW + c W)`` in place."""
    if W.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            nn_l2_decay_step_f32(&W[0], &dW[0], W.shape[0], <float>lr, <float>c)
        else:
            nn_l2_decay_step_f64(&W[0], &dW[0], W.shape[0], lr, c)


def l1_prox(floating[::1] W, double thr):
    """Soft threshold in place."""
    if W.shape[0] == 0:
        return
    with nogil:
        _l1_prox(&W[0], W.shape[0], <floating>thr)


def optimizer_step(int opt, floating[::1] W, const floating[::1] g, floating[::1] V,
                   floating[::1] M, double lr, double mu, double b1, double b2, double eps,
                   double t):
    """One step of optimizer ``opt`` without penalty; V (momentum, Adam's v) and M (Adam's m)."""
    cdef double lr_t = 0.0
    if W.shape[0] == 0:
        return
    if opt == OPT_ADAM:
        lr_t = lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t))
    with nogil:
        _optimizer(opt, &W[0], &g[0], _data(V), _data(M), _data(V), W.shape[0], lr, 0.0, 0.0,
                   mu, b1, b2, lr_t, eps)


def penalty_sums(const floating[::1] W):
    """``(sum W^2, sum |W|)`` in double."""
    cdef double s2 = 0.0, s1 = 0.0
    if W.shape[0]:
        with nogil:
            _penalty_sums(&W[0], W.shape[0], &s2, &s1)
    return s2, s1


# The multithreaded epochs (sync data-parallel and Hogwild) use the cdef functions above.
include "_cython_parallel.pxi"

/*
 * Type-generic bodies of the fused kernels declared in nn_fused.h.
 *
 * Deliberately no include guard: nn_fused.c includes this file once per real type,
 * with NN_T (the type), NN_S(name) (suffixes _f32 / _f64), NN_TANH, NN_EXP (libm exp),
 * NN_EXPV (the exp of the softmax: vectorizable for float, libm for double), NN_SQRT,
 * NN_FABS, NN_EPS (machine epsilon), NN_INLINE and NN_CLONES defined. Every arithmetic step follows the order of operations of the NumPy
 * reference (src/nnopt_fast/kernels/reference.py), so float64 results agree to the last
 * few ulps; nn_fused.c is compiled with -ffp-contract=off for the same reason.
 */

/* Activation g(z) by code (reference.ACTIVATIONS); inlined with a constant act. */
NN_INLINE NN_T NN_S(nn_act)(NN_T z, int act)
{
    switch (act) {
    case NN_ACT_TANH:
        return NN_TANH(z);
    case NN_ACT_RELU:
        /* np.maximum(z, 0): keeps NaN and -0. */
        return z < (NN_T)0 ? (NN_T)0 : z;
    case NN_ACT_LOGISTIC:
        return (NN_T)1 / ((NN_T)1 + NN_EXP(-z));
    default:
        return z;
    }
}

/* g'(z) expressed through h = g(z). */
NN_INLINE NN_T NN_S(nn_dact)(NN_T h, int act)
{
    switch (act) {
    case NN_ACT_TANH:
        return (NN_T)1 - h * h;
    case NN_ACT_RELU:
        return h > (NN_T)0 ? (NN_T)1 : (NN_T)0;
    case NN_ACT_LOGISTIC:
        return h * ((NN_T)1 - h);
    default:
        return (NN_T)1;
    }
}

/* np.sign: 0 for +-0, NaN for NaN. */
static inline NN_T NN_S(nn_sign)(NN_T w)
{
    return w > (NN_T)0 ? (NN_T)1 : (w < (NN_T)0 ? (NN_T)-1 : (w == (NN_T)0 ? (NN_T)0 : w));
}

void NN_S(nn_gather_rows)(NN_T *out, const NN_T *X, const int64_t *idx, ptrdiff_t n_rows,
                          ptrdiff_t n_cols)
{
    for (ptrdiff_t i = 0; i < n_rows; i++)
        memcpy(out + i * n_cols, X + idx[i] * n_cols, (size_t)n_cols * sizeof(NN_T));
}

/* Rows narrower than this run as one flat loop over rows x width (see nn_bias_tile). */
#ifndef NN_FLAT_COLS
#define NN_FLAT_COLS 16
#endif
/* lcm(n_cols, 16) <= 15 * 16 for n_cols < NN_FLAT_COLS. */
#define NN_TILE_MAX 240

/* Narrow rows fill no vector: the passes below then run flat over the whole block,
 * taking the bias from a tile of it repeated lcm(n_cols, 16) / n_cols times, so that
 * every vector sees the bias of its lanes' columns. Returns the tile's length. */
NN_INLINE ptrdiff_t NN_S(nn_bias_tile)(NN_T *tile, const NN_T *b, ptrdiff_t n_cols)
{
    ptrdiff_t a = n_cols, g = 16, t;
    while (g) {
        t = a % g;
        a = g;
        g = t;
    }
    const ptrdiff_t len = n_cols * (16 / a);
    for (ptrdiff_t k = 0; k < len; k++)
        tile[k] = b[k % n_cols];
    return len;
}

NN_INLINE void
NN_S(nn_bias_act_body)(NN_T *H, const NN_T *b, ptrdiff_t n_rows, ptrdiff_t n_cols, int act)
{
    if (n_cols < NN_FLAT_COLS) {
        NN_T tile[NN_TILE_MAX];
        const ptrdiff_t len = NN_S(nn_bias_tile)(tile, b, n_cols), n = n_rows * n_cols;
        for (ptrdiff_t f = 0; f < n; f += len) {
            NN_T *h = H + f;
            const ptrdiff_t m = n - f < len ? n - f : len;
            for (ptrdiff_t k = 0; k < m; k++)
                h[k] = NN_S(nn_act)(h[k] + tile[k], act);
        }
        return;
    }
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        NN_T *h = H + i * n_cols;
        for (ptrdiff_t j = 0; j < n_cols; j++)
            h[j] = NN_S(nn_act)(h[j] + b[j], act);
    }
}

NN_CLONES void NN_S(nn_bias_act)(NN_T *H, const NN_T *b, ptrdiff_t n_rows, ptrdiff_t n_cols,
                                 int act)
{
    /* One specialized loop per activation, so each inner loop is branch-free. */
    switch (act) {
    case NN_ACT_TANH:
        NN_S(nn_bias_act_body)(H, b, n_rows, n_cols, NN_ACT_TANH);
        break;
    case NN_ACT_RELU:
        NN_S(nn_bias_act_body)(H, b, n_rows, n_cols, NN_ACT_RELU);
        break;
    case NN_ACT_LOGISTIC:
        NN_S(nn_bias_act_body)(H, b, n_rows, n_cols, NN_ACT_LOGISTIC);
        break;
    default:
        NN_S(nn_bias_act_body)(H, b, n_rows, n_cols, NN_ACT_IDENTITY);
        break;
    }
}

NN_INLINE void
NN_S(nn_bias_act_dropout_body)(NN_T *H, NN_T *A, NN_T *M, const NN_T *b, ptrdiff_t n_rows,
                               ptrdiff_t n_cols, int act, uint64_t key, int64_t row0,
                               uint64_t thr, NN_T scale)
{
    /* Unit (row0 + i, j) is hash counter (row0 + i) n_cols + j + 1: flat element f of the
     * block is counter row0 n_cols + f + 1, so the flat loop keeps the masks. */
    const uint64_t e0 = (uint64_t)row0 * (uint64_t)n_cols + 1u;
    if (n_cols < NN_FLAT_COLS) {
        NN_T tile[NN_TILE_MAX];
        const ptrdiff_t len = NN_S(nn_bias_tile)(tile, b, n_cols), n = n_rows * n_cols;
        for (ptrdiff_t f = 0; f < n; f += len) {
            NN_T *h = H + f, *a = A + f, *m = M + f;
            const ptrdiff_t cnt = n - f < len ? n - f : len;
            for (ptrdiff_t k = 0; k < cnt; k++) {
                const NN_T hv = NN_S(nn_act)(h[k] + tile[k], act);
                const NN_T mv = nn_dropout_kept(key, e0 + (uint64_t)(f + k), thr) ? scale : (NN_T)0;
                h[k] = hv;
                m[k] = mv;
                a[k] = hv * mv;
            }
        }
        return;
    }
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        NN_T *h = H + i * n_cols, *a = A + i * n_cols, *m = M + i * n_cols;
        const uint64_t ei = e0 + (uint64_t)i * (uint64_t)n_cols;
        for (ptrdiff_t j = 0; j < n_cols; j++) {
            const NN_T hv = NN_S(nn_act)(h[j] + b[j], act);
            const NN_T mv = nn_dropout_kept(key, ei + (uint64_t)j, thr) ? scale : (NN_T)0;
            h[j] = hv;
            m[j] = mv;
            a[j] = hv * mv;
        }
    }
}

NN_CLONES void NN_S(nn_bias_act_dropout)(NN_T *H, NN_T *A, NN_T *M, const NN_T *b,
                                         ptrdiff_t n_rows, ptrdiff_t n_cols, int act,
                                         uint64_t key, int64_t row0, uint64_t thr, NN_T scale)
{
    switch (act) {
    case NN_ACT_TANH:
        NN_S(nn_bias_act_dropout_body)(H, A, M, b, n_rows, n_cols, NN_ACT_TANH, key, row0, thr,
                                       scale);
        break;
    case NN_ACT_RELU:
        NN_S(nn_bias_act_dropout_body)(H, A, M, b, n_rows, n_cols, NN_ACT_RELU, key, row0, thr,
                                       scale);
        break;
    case NN_ACT_LOGISTIC:
        NN_S(nn_bias_act_dropout_body)(H, A, M, b, n_rows, n_cols, NN_ACT_LOGISTIC, key, row0,
                                       thr, scale);
        break;
    default:
        NN_S(nn_bias_act_dropout_body)(H, A, M, b, n_rows, n_cols, NN_ACT_IDENTITY, key, row0,
                                       thr, scale);
        break;
    }
}

NN_INLINE void
NN_S(nn_act_backward_body)(NN_T *out, const NN_T *dA, const NN_T *H, const NN_T *M,
                           ptrdiff_t n, int act)
{
    if (M) {
        for (ptrdiff_t i = 0; i < n; i++)
            out[i] = (dA[i] * NN_S(nn_dact)(H[i], act)) * M[i];
    } else {
        for (ptrdiff_t i = 0; i < n; i++)
            out[i] = dA[i] * NN_S(nn_dact)(H[i], act);
    }
}

NN_CLONES void NN_S(nn_act_backward)(NN_T *out, const NN_T *dA, const NN_T *H, const NN_T *M,
                                     ptrdiff_t n, int act)
{
    switch (act) {
    case NN_ACT_TANH:
        NN_S(nn_act_backward_body)(out, dA, H, M, n, NN_ACT_TANH);
        break;
    case NN_ACT_RELU:
        NN_S(nn_act_backward_body)(out, dA, H, M, n, NN_ACT_RELU);
        break;
    case NN_ACT_LOGISTIC:
        NN_S(nn_act_backward_body)(out, dA, H, M, n, NN_ACT_LOGISTIC);
        break;
    default:
        NN_S(nn_act_backward_body)(out, dA, H, M, n, NN_ACT_IDENTITY);
        break;
    }
}

NN_CLONES void NN_S(nn_dropout_mask)(NN_T *out, ptrdiff_t n_rows, ptrdiff_t n_cols, uint64_t key,
                                     int64_t row0, uint64_t thr, NN_T scale)
{
    const uint64_t e0 = (uint64_t)row0 * (uint64_t)n_cols + 1u;
    const ptrdiff_t n = n_rows * n_cols;
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = nn_dropout_kept(key, e0 + (uint64_t)i, thr) ? scale : (NN_T)0;
}

/* Rows of the loss kernels whose logs are taken together (a vectorized loop). */
#define NN_LOSS_BLOCK 256

/* x[i] <- -log(x[i]) for n positive doubles (the clipped probabilities). */
NN_INLINE void NN_S(nn_neg_logs)(double *x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        x[i] = -nn_log_f64(x[i]);
}

/* Row r of a batch lives at row idx[r] of the full arrays (or row r without idx). */
#define NN_ROW(idx, r) ((idx) ? (idx)[r] : (int64_t)(r))

NN_CLONES double NN_S(nn_softmax_xent)(NN_T *dZ, const NN_T *Z, const NN_T *b, const int64_t *y,
                                       const int64_t *idx, const NN_T *sw, ptrdiff_t n_rows,
                                       ptrdiff_t n_cols)
{
    const NN_T eps = NN_EPS, one_m_eps = (NN_T)1 - NN_EPS;
    double total = 0.0;
    /* Pass 1, row by row: S = (Z + b) - max. dZ may alias Z: each z[j] is read before
     * g[j] is written. A NaN anywhere reaches the loss through exp(S) whatever max is. */
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        const NN_T *z = Z + i * n_cols;
        NN_T *g = dZ + i * n_cols;
        if (b) {
            for (ptrdiff_t j = 0; j < n_cols; j++)
                g[j] = z[j] + b[j];
        } else {
            for (ptrdiff_t j = 0; j < n_cols; j++)
                g[j] = z[j];
        }
        NN_T zmax = g[0];
        for (ptrdiff_t j = 1; j < n_cols; j++)
            zmax = g[j] > zmax ? g[j] : zmax;
        for (ptrdiff_t j = 0; j < n_cols; j++)
            g[j] = g[j] - zmax;
    }
    /* Pass 2: exp over the whole block, one long loop that vectorizes even when rows are
     * shorter than a vector. */
    const ptrdiff_t n = n_rows * n_cols;
    for (ptrdiff_t k = 0; k < n; k++)
        dZ[k] = NN_EXPV(dZ[k]);
    /* Pass 3, row by row: normalize and gradient; the clipped probability of each row's
     * class goes to a block buffer whose logs are taken in one vectorized loop. */
    double pb[NN_LOSS_BLOCK];
    for (ptrdiff_t i0 = 0; i0 < n_rows; i0 += NN_LOSS_BLOCK) {
        const ptrdiff_t nr = n_rows - i0 < NN_LOSS_BLOCK ? n_rows - i0 : NN_LOSS_BLOCK;
        for (ptrdiff_t i = i0; i < i0 + nr; i++) {
            NN_T *g = dZ + i * n_cols;
            const int64_t r = NN_ROW(idx, i);
            NN_T sum = 0;
            for (ptrdiff_t j = 0; j < n_cols; j++)
                sum += g[j];
            for (ptrdiff_t j = 0; j < n_cols; j++)
                g[j] = g[j] / sum;
            const int64_t c = y[r];
            NN_T p = g[c];
            p = p < eps ? eps : p;
            p = p > one_m_eps ? one_m_eps : p;
            pb[i - i0] = (double)p;
            g[c] -= (NN_T)1;
            if (sw) {
                const NN_T w = sw[r];
                for (ptrdiff_t j = 0; j < n_cols; j++)
                    g[j] *= w;
            }
        }
        NN_S(nn_neg_logs)(pb, nr);
        for (ptrdiff_t i = 0; i < nr; i++)
            total += sw ? pb[i] * (double)sw[NN_ROW(idx, i0 + i)] : pb[i];
    }
    return total;
}

/* Columns j0 .. j0 + n of logistic row i: the gradient, and the clipped probabilities'
 * pc and 1 - pc into lp and lq (for their logs). */
NN_INLINE void NN_S(nn_logistic_part)(NN_T *g, const NN_T *z, const NN_T *b, const NN_T *yr,
                                      ptrdiff_t n, double *lp, double *lq)
{
    const NN_T eps = NN_EPS, one_m_eps = (NN_T)1 - NN_EPS;
    for (ptrdiff_t j = 0; j < n; j++) {
        const NN_T zj = b ? z[j] + b[j] : z[j];
        const NN_T p = (NN_T)1 / ((NN_T)1 + NN_EXP(-zj));
        NN_T pc = p < eps ? eps : p;
        pc = pc > one_m_eps ? one_m_eps : pc;
        lp[j] = (double)pc;
        lq[j] = 1.0 - (double)pc;
        g[j] = p - yr[j];
    }
}

NN_CLONES double NN_S(nn_logistic_xent)(NN_T *dZ, const NN_T *Z, const NN_T *b, const NN_T *Y,
                              const int64_t *idx, const NN_T *sw, ptrdiff_t n_rows,
                              ptrdiff_t n_cols)
{
    /* The clipped probabilities of a block of elements (whole rows, or a part of one wide
     * row) go to buffers whose logs are taken in one vectorized loop; each row's loss then
     * adds up in column order. */
    double total = 0.0;
    double lp[NN_LOSS_BLOCK], lq[NN_LOSS_BLOCK];
    const ptrdiff_t rows_per = n_cols > 0 && n_cols <= NN_LOSS_BLOCK ? NN_LOSS_BLOCK / n_cols : 1;
    const ptrdiff_t part = n_cols < NN_LOSS_BLOCK ? n_cols : NN_LOSS_BLOCK;
    for (ptrdiff_t i0 = 0; i0 < n_rows; i0 += rows_per) {
        const ptrdiff_t nr = n_rows - i0 < rows_per ? n_rows - i0 : rows_per;
        double Ls[NN_LOSS_BLOCK];
        for (ptrdiff_t i = 0; i < nr; i++)
            Ls[i] = 0.0;
        for (ptrdiff_t j0 = 0; j0 < n_cols; j0 += part) {
            const ptrdiff_t nj = n_cols - j0 < part ? n_cols - j0 : part;
            for (ptrdiff_t i = 0; i < nr; i++) {
                const ptrdiff_t row = i0 + i;
                NN_S(nn_logistic_part)(dZ + row * n_cols + j0, Z + row * n_cols + j0,
                                       b ? b + j0 : NULL, Y + NN_ROW(idx, row) * n_cols + j0, nj,
                                       lp + i * nj, lq + i * nj);
            }
            NN_S(nn_neg_logs)(lp, nr * nj);
            NN_S(nn_neg_logs)(lq, nr * nj);
            for (ptrdiff_t i = 0; i < nr; i++) {
                const NN_T *yr = Y + NN_ROW(idx, i0 + i) * n_cols + j0;
                for (ptrdiff_t j = 0; j < nj; j++) {
                    const double y64 = (double)yr[j];
                    Ls[i] += y64 * lp[i * nj + j] + (1.0 - y64) * lq[i * nj + j];
                }
            }
        }
        for (ptrdiff_t i = 0; i < nr; i++) {
            double L = Ls[i];
            if (sw) {
                const ptrdiff_t row = i0 + i;
                const NN_T w = sw[NN_ROW(idx, row)];
                NN_T *g = dZ + row * n_cols;
                for (ptrdiff_t j = 0; j < n_cols; j++)
                    g[j] *= w;
                L = L * (double)w;
            }
            total += L;
        }
    }
    return total;
}

NN_CLONES double NN_S(nn_squared_error)(NN_T *dZ, const NN_T *Z, const NN_T *b, const NN_T *Y,
                              const int64_t *idx, const NN_T *sw, ptrdiff_t n_rows,
                              ptrdiff_t n_cols)
{
    double total = 0.0;
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        const NN_T *z = Z + i * n_cols;
        NN_T *g = dZ + i * n_cols;
        const int64_t r = NN_ROW(idx, i);
        const NN_T *yr = Y + r * n_cols;
        double L = 0.0;
        for (ptrdiff_t j = 0; j < n_cols; j++) {
            const NN_T zj = b ? z[j] + b[j] : z[j];
            const NN_T gj = zj - yr[j];
            L += (double)gj * (double)gj;
            g[j] = gj;
        }
        L = 0.5 * L;
        if (sw) {
            const NN_T w = sw[r];
            for (ptrdiff_t j = 0; j < n_cols; j++)
                g[j] *= w;
            L = L * (double)w;
        }
        total += L;
    }
    return total;
}

#undef NN_ROW

NN_CLONES void NN_S(nn_colsum)(NN_T *out, const NN_T *D, ptrdiff_t n_rows, ptrdiff_t n_cols,
                               NN_T scale)
{
    /* Row after row, as NumPy reduces axis 0 of a C-ordered array. */
    for (ptrdiff_t j = 0; j < n_cols; j++)
        out[j] = n_rows > 0 ? D[j] : (NN_T)0;
    for (ptrdiff_t i = 1; i < n_rows; i++) {
        const NN_T *d = D + i * n_cols;
        for (ptrdiff_t j = 0; j < n_cols; j++)
            out[j] += d[j];
    }
    for (ptrdiff_t j = 0; j < n_cols; j++)
        out[j] *= scale;
}

/* The penalized gradient of reference.run_epoch step 5: dW (+ c2 W) (+ c1 sign W). */
NN_INLINE NN_T NN_S(nn_pgrad)(NN_T g, NN_T w, NN_T c2, NN_T c1)
{
    if (c2 != (NN_T)0)
        g = g + c2 * w;
    if (c1 != (NN_T)0)
        g = g + c1 * NN_S(nn_sign)(w);
    return g;
}

NN_CLONES void NN_S(nn_sgd_update)(NN_T *W, const NN_T *G, ptrdiff_t n, NN_T lr, NN_T c2, NN_T c1)
{
    for (ptrdiff_t i = 0; i < n; i++)
        W[i] = W[i] - lr * NN_S(nn_pgrad)(G[i], W[i], c2, c1);
}

NN_CLONES void NN_S(nn_momentum_update)(NN_T *W, const NN_T *G, NN_T *V, ptrdiff_t n, NN_T lr,
                                        NN_T c2, NN_T c1, NN_T mu)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const NN_T g = NN_S(nn_pgrad)(G[i], W[i], c2, c1);
        const NN_T v = V[i] * mu - lr * g;
        V[i] = v;
        W[i] = W[i] + v;
    }
}

NN_CLONES void NN_S(nn_nesterov_update)(NN_T *W, const NN_T *G, NN_T *V, ptrdiff_t n, NN_T lr,
                                        NN_T c2, NN_T c1, NN_T mu)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const NN_T g = NN_S(nn_pgrad)(G[i], W[i], c2, c1);
        const NN_T v = V[i] * mu - lr * g;
        V[i] = v;
        W[i] = W[i] + (mu * v - lr * g);
    }
}

NN_CLONES void NN_S(nn_adam_update)(NN_T *W, const NN_T *G, NN_T *M, NN_T *V, ptrdiff_t n,
                                    NN_T c2, NN_T c1, NN_T b1, NN_T one_m_b1, NN_T b2,
                                    NN_T one_m_b2, NN_T lr_t, NN_T eps)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const NN_T g = NN_S(nn_pgrad)(G[i], W[i], c2, c1);
        const NN_T m = M[i] * b1 + one_m_b1 * g;
        const NN_T v = V[i] * b2 + one_m_b2 * (g * g);
        M[i] = m;
        V[i] = v;
        W[i] = W[i] - (lr_t * m) / (NN_SQRT(v) + eps);
    }
}

NN_CLONES void NN_S(nn_l2_decay_step)(NN_T *W, const NN_T *dW, ptrdiff_t n, NN_T lr, NN_T c)
{
    for (ptrdiff_t i = 0; i < n; i++)
        W[i] = W[i] - lr * (dW[i] + c * W[i]);
}

NN_CLONES void NN_S(nn_add_penalty_grad)(NN_T *dW, const NN_T *W, ptrdiff_t n, NN_T c2, NN_T c1)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dW[i] = NN_S(nn_pgrad)(dW[i], W[i], c2, c1);
}

NN_CLONES void NN_S(nn_l1_prox)(NN_T *W, ptrdiff_t n, NN_T thr)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        const NN_T w = W[i];
        const NN_T a = NN_FABS(w) - thr;
        W[i] = NN_S(nn_sign)(w) * (a < (NN_T)0 ? (NN_T)0 : a);
    }
}

NN_CLONES void NN_S(nn_penalty_sums)(const NN_T *W, ptrdiff_t n, double *s2, double *s1)
{
    double a2 = 0.0, a1 = 0.0;
    /* A reordered (vectorized) sum: NumPy's own dot and sum orders differ anyway. */
#if defined(_OPENMP) || defined(NN_OPENMP_SIMD)
#pragma omp simd reduction(+ : a2, a1)
#endif
    for (ptrdiff_t i = 0; i < n; i++) {
        const double w = (double)W[i];
        a2 += w * w;
        a1 += fabs(w);
    }
    *s2 += a2;
    *s1 += a1;
}

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

NN_CLONES NN_CONTRACT void NN_S(nn_bias_act)(NN_T *H, const NN_T *b, ptrdiff_t n_rows,
                                              ptrdiff_t n_cols, int act)
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
    const uint64_t e0 = (uint64_t)row0 * (uint64_t)n_cols + 1u, z0 = e0 * NN_GOLDEN + key;
    if (n_cols < NN_FLAT_COLS) {
        NN_T tile[NN_TILE_MAX];
        const ptrdiff_t len = NN_S(nn_bias_tile)(tile, b, n_cols), n = n_rows * n_cols;
        for (ptrdiff_t f = 0; f < n; f += len) {
            NN_T *h = H + f, *a = A + f, *m = M + f;
            const ptrdiff_t cnt = n - f < len ? n - f : len;
            for (ptrdiff_t k = 0; k < cnt; k++) {
                const NN_T hv = NN_S(nn_act)(h[k] + tile[k], act);
                const NN_T mv = nn_dropout_kept_z(z0 + (uint64_t)(f + k) * NN_GOLDEN, thr)
                                    ? scale : (NN_T)0;
                h[k] = hv;
                m[k] = mv;
                a[k] = hv * mv;
            }
        }
        return;
    }
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        NN_T *h = H + i * n_cols, *a = A + i * n_cols, *m = M + i * n_cols;
        const uint64_t zi = (e0 + (uint64_t)i * (uint64_t)n_cols) * NN_GOLDEN + key;
        for (ptrdiff_t j = 0; j < n_cols; j++) {
            const NN_T hv = NN_S(nn_act)(h[j] + b[j], act);
            const NN_T mv = nn_dropout_kept_z(zi + (uint64_t)j * NN_GOLDEN, thr) ? scale : (NN_T)0;
            h[j] = hv;
            m[j] = mv;
            a[j] = hv * mv;
        }
    }
}

NN_CLONES NN_CONTRACT void NN_S(nn_bias_act_dropout)(NN_T *H, NN_T *A, NN_T *M, const NN_T *b,
                                                      ptrdiff_t n_rows, ptrdiff_t n_cols, int act,
                                                      uint64_t key, int64_t row0, uint64_t thr,
                                                      NN_T scale)
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
    const uint64_t z0 = ((uint64_t)row0 * (uint64_t)n_cols + 1u) * NN_GOLDEN + key;
    const ptrdiff_t n = n_rows * n_cols;
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = nn_dropout_kept_z(z0 + (uint64_t)i * NN_GOLDEN, thr) ? scale : (NN_T)0;
}

NN_CLONES void NN_S(nn_csr_gemm)(NN_T *H, const NN_S(nn_csr) *X, const int64_t *idx,
                                 ptrdiff_t nb, const NN_T *W, ptrdiff_t n_out)
{
    for (ptrdiff_t r = 0; r < nb; r++) {
        NN_T *h = H + r * n_out;
        const int64_t row = idx[r];
        for (ptrdiff_t j = 0; j < n_out; j++)
            h[j] = (NN_T)0;
        for (int64_t q = X->indptr[row]; q < X->indptr[row + 1]; q++) {
            const NN_T v = X->data[q];
            const NN_T *w = W + X->indices[q] * n_out;
            for (ptrdiff_t j = 0; j < n_out; j++)
                h[j] += v * w[j];
        }
    }
}

NN_CLONES void NN_S(nn_csr_scatter)(NN_T *out, ptrdiff_t n_out, ptrdiff_t i0, ptrdiff_t i1,
                                    const NN_S(nn_csr) *X, const int64_t *idx, ptrdiff_t nb,
                                    const NN_T *D, NN_T scale)
{
    for (ptrdiff_t r = 0; r < nb; r++) {
        const int64_t row = idx[r];
        const NN_T *d = D + r * n_out;
        for (int64_t q = X->indptr[row]; q < X->indptr[row + 1]; q++) {
            const int64_t col = X->indices[q];
            if (col < i0 || col >= i1)
                continue;
            const NN_T v = scale * X->data[q];
            NN_T *o = out + (col - i0) * n_out;
            for (ptrdiff_t j = 0; j < n_out; j++)
                o[j] += v * d[j];
        }
    }
}

NN_CLONES int NN_S(nn_all_finite)(const NN_T *x, ptrdiff_t n)
{
    /* x - x is 0 for every finite x, NaN for NaN and infinities: one vectorized sum. */
    NN_T acc = 0;
#if defined(_OPENMP) || defined(NN_OPENMP_SIMD)
#pragma omp simd reduction(+ : acc)
#endif
    for (ptrdiff_t i = 0; i < n; i++)
        acc += x[i] - x[i];
    return acc == (NN_T)0;
}

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

/* Lanes of the penalty sums' accumulators: four vectors of doubles, so that the adds
 * overlap. */
#define NN_PSUM_LANES 32

NN_CLONES NN_CONTRACT void NN_S(nn_penalty_sums)(const NN_T *W, ptrdiff_t n, double *s2,
                                                 double *s1)
{
    /* A reordered (vectorized) sum: NumPy's own dot and sum orders differ anyway. */
    double a2[NN_PSUM_LANES] = {0}, a1[NN_PSUM_LANES] = {0};
    ptrdiff_t i = 0;
    if (s1) {
        for (; i + NN_PSUM_LANES <= n; i += NN_PSUM_LANES)
            for (ptrdiff_t q = 0; q < NN_PSUM_LANES; q++) {
                const double w = (double)W[i + q];
                a2[q] += w * w;
                a1[q] += fabs(w);
            }
    } else {
        /* The training step without an L1 term: sum W^2 alone, 40% fewer operations. */
        for (; i + NN_PSUM_LANES <= n; i += NN_PSUM_LANES)
            for (ptrdiff_t q = 0; q < NN_PSUM_LANES; q++) {
                const double w = (double)W[i + q];
                a2[q] += w * w;
            }
    }
    for (ptrdiff_t q = 0; i + q < n; q++) {
        const double w = (double)W[i + q];
        a2[q] += w * w;
        a1[q] += fabs(w);
    }
    double t2 = 0.0, t1 = 0.0;
    for (ptrdiff_t q = 0; q < NN_PSUM_LANES; q++) {
        t2 += a2[q];
        t1 += a1[q];
    }
    *s2 += t2;
    if (s1)
        *s1 += t1;
}
#undef NN_PSUM_LANES

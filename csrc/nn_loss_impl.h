/*
 * Type-generic bodies of the output layers' losses and activations (nn_fused.h).
 *
 * Deliberately no include guard: nn_fused.c includes this file once per real type, after
 * nn_fused_impl.h, with the same macros defined. Every arithmetic step follows the
 * reference's order of operations along a row; the logs of a block of rows are taken in
 * one vectorized loop (nn_log_f64, within 2 ulp of libm's), and the rows' losses add up
 * in row order.
 */

/* Rows of the loss kernels whose logs are taken together (a vectorized loop). */
#define NN_LOSS_BLOCK 256

/* A row's loss gradient g (n_cols entries) and loss L times sample weight w; returns L w. */
NN_INLINE double NN_S(nn_weigh_row)(NN_T *g, ptrdiff_t n_cols, NN_T w, double L)
{
    for (ptrdiff_t j = 0; j < n_cols; j++)
        g[j] *= w;
    return L * (double)w;
}

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
        /* Two chains of comparisons (rows are short: one chain is all latency); a NaN
         * reaches the loss through exp(S) whichever max it leaves. */
        NN_T zmax = g[0], zmax2 = g[n_cols - 1];
        for (ptrdiff_t j = 1; j + 1 < n_cols; j += 2) {
            zmax = g[j] > zmax ? g[j] : zmax;
            zmax2 = g[j + 1] > zmax2 ? g[j + 1] : zmax2;
        }
        zmax = zmax2 > zmax ? zmax2 : zmax;
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
            /* Pairs of terms, then the pairs in order (NumPy's own sum is pairwise too):
             * half the chain of dependent adds. */
            NN_T sum = 0;
            ptrdiff_t j = 0;
            for (; j + 1 < n_cols; j += 2)
                sum += g[j] + g[j + 1];
            if (j < n_cols)
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
                L = NN_S(nn_weigh_row)(dZ + row * n_cols, n_cols, sw[NN_ROW(idx, row)], L);
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
        if (sw)
            L = NN_S(nn_weigh_row)(g, n_cols, sw[r], L);
        total += L;
    }
    return total;
}

/* Y log Y in double, 0 at Y = 0 (the deviance's constant; Y >= 0). */
NN_INLINE double NN_S(nn_ylogy)(double y)
{
    return y > 0.0 ? y * nn_log_f64(y > 0.0 ? y : 1.0) : 0.0;
}

NN_CLONES double NN_S(nn_poisson_deviance)(NN_T *dZ, const NN_T *Z, const NN_T *b,
                                           const NN_T *Y, const int64_t *idx, const NN_T *sw,
                                           ptrdiff_t n_rows, ptrdiff_t n_cols)
{
    /* reference.poisson_deviance: P = exp(Z + b), L = sum_k (Y log Y - Y Z - Y + P). */
    double total = 0.0;
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        const NN_T *z = Z + i * n_cols;
        NN_T *g = dZ + i * n_cols;
        const int64_t r = NN_ROW(idx, i);
        const NN_T *yr = Y + r * n_cols;
        double L = 0.0;
        for (ptrdiff_t j = 0; j < n_cols; j++) {
            const NN_T zj = b ? z[j] + b[j] : z[j];
            const NN_T p = NN_EXPV(zj);
            const double y64 = (double)yr[j];
            L += NN_S(nn_ylogy)(y64) - y64 * (double)zj - y64 + (double)p;
            g[j] = p - yr[j];
        }
        if (sw)
            L = NN_S(nn_weigh_row)(g, n_cols, sw[r], L);
        total += L;
    }
    return total;
}

#undef NN_ROW

NN_CLONES void NN_S(nn_output_activation)(int output, NN_T *Z, ptrdiff_t n_rows, ptrdiff_t n_cols)
{
    /* reference.output_activation: softmax (max-shifted, row by row), logistic, identity,
     * exp. */
    if (output == NN_OUT_SOFTMAX) {
        for (ptrdiff_t i = 0; i < n_rows; i++) {
            NN_T *z = Z + i * n_cols, zmax = z[0], sum = 0;
            for (ptrdiff_t j = 1; j < n_cols; j++)
                zmax = z[j] > zmax ? z[j] : zmax;
            for (ptrdiff_t j = 0; j < n_cols; j++) {
                z[j] = NN_EXPV(z[j] - zmax);
                sum += z[j];
            }
            for (ptrdiff_t j = 0; j < n_cols; j++)
                z[j] = z[j] / sum;
        }
    } else if (output == NN_OUT_LOGISTIC) {
        const ptrdiff_t n = n_rows * n_cols;
        for (ptrdiff_t i = 0; i < n; i++)
            Z[i] = (NN_T)1 / ((NN_T)1 + NN_EXPV(-Z[i]));
    } else if (output == NN_OUT_EXP) {
        const ptrdiff_t n = n_rows * n_cols;
        for (ptrdiff_t i = 0; i < n; i++)
            Z[i] = NN_EXPV(Z[i]);
    }
}

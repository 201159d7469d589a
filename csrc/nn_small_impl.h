/*
 * Type-generic small-matrix kernels of the feature-major layout (nn_small.h).
 *
 * Deliberately no include guard: nn_fused.c includes this file once per real type, after
 * nn_fused_impl.h, with NN_T, NN_S(name), NN_INLINE and NN_CLONES defined, and NN_I the
 * signed integer type of NN_T's size.
 *
 * In the feature-major layout a layer's activations are an (n_units, ld) block: one
 * contiguous row of batch columns per unit. Every loop below runs along those rows, so
 * it fills whole vectors whatever the layer's width (a row-major pass over 8 units
 * never fills an AVX-512 register). The GEMMs hold a tile of 4 output rows x 2 vectors
 * of columns in registers and stream the input rows through it; GCC's vector
 * extensions let each target_clones variant lower the tile to its widest registers.
 * These kernels may use fused multiply-adds: their results are checked against the
 * reference to the parity tolerances, not to the bit.
 */

#if defined(__GNUC__)
#define NN_SMALL_FMA __attribute__((optimize("fp-contract=fast")))
#else
#define NN_SMALL_FMA
#endif

#if defined(__GNUC__)
#define NN_VBYTES 64
typedef NN_T NN_S(nn_vec) __attribute__((vector_size(NN_VBYTES), aligned(sizeof(NN_T))));
/* Lane indices of the same width (NN_I: the integer of NN_T's size). */
typedef NN_I NN_S(nn_ivec) __attribute__((vector_size(NN_VBYTES)));
#define NN_VL ((ptrdiff_t)(NN_VBYTES / sizeof(NN_T)))
#define NN_VLOAD(p) (*(const NN_S(nn_vec) *)(p))
#define NN_VSTORE(p, v) (*(NN_S(nn_vec) *)(p) = (v))
#define NN_FMA NN_SMALL_FMA

/* out[r, c] = bias[r] + sum_s M[r rs + s ss] in[s, c] for the rb rows r0.. and the cb
 * column vectors from c, each row of `in` and `out` ld long. */
NN_INLINE void NN_S(nn_fm_tile)(const NN_T *M, ptrdiff_t rs, ptrdiff_t ss, const NN_T *bias,
                                const NN_T *in, ptrdiff_t ld, ptrdiff_t n_s, ptrdiff_t r0,
                                ptrdiff_t c, NN_T *out, const int rb, const int cb)
{
    NN_S(nn_vec) acc[4][2];
    for (int i = 0; i < rb; i++)
        for (int v = 0; v < cb; v++)
            acc[i][v] = (NN_S(nn_vec)){0} + (bias ? bias[r0 + i] : (NN_T)0);
    for (ptrdiff_t s = 0; s < n_s; s++) {
        const NN_T *x = in + s * ld + c;
        NN_S(nn_vec) xv[2];
        for (int v = 0; v < cb; v++)
            xv[v] = NN_VLOAD(x + v * NN_VL);
        for (int i = 0; i < rb; i++) {
            const NN_T w = M[(r0 + i) * rs + s * ss];
            for (int v = 0; v < cb; v++)
                acc[i][v] += w * xv[v];
        }
    }
    for (int i = 0; i < rb; i++)
        for (int v = 0; v < cb; v++)
            NN_VSTORE(out + (r0 + i) * ld + c + v * NN_VL, acc[i][v]);
}

/* The tiles over column vectors c0 .. n_pad (a multiple of NN_VL) for rb rows from r0. */
NN_INLINE void NN_S(nn_fm_rows)(const NN_T *M, ptrdiff_t rs, ptrdiff_t ss, const NN_T *bias,
                                const NN_T *in, ptrdiff_t ld, ptrdiff_t n_s, ptrdiff_t r0,
                                ptrdiff_t n_pad, NN_T *out, const int rb)
{
    ptrdiff_t c = 0;
    for (; c + 2 * NN_VL <= n_pad; c += 2 * NN_VL)
        NN_S(nn_fm_tile)(M, rs, ss, bias, in, ld, n_s, r0, c, out, rb, 2);
    for (; c < n_pad; c += NN_VL)
        NN_S(nn_fm_tile)(M, rs, ss, bias, in, ld, n_s, r0, c, out, rb, 1);
}

NN_CLONES NN_FMA void NN_S(nn_fm_gemm)(const NN_T *M, ptrdiff_t rs, ptrdiff_t ss,
                                       const NN_T *bias, const NN_T *in, ptrdiff_t ld,
                                       ptrdiff_t n_s, ptrdiff_t n_r, ptrdiff_t n_pad, NN_T *out)
{
    ptrdiff_t r = 0;
    for (; r + 4 <= n_r; r += 4)
        NN_S(nn_fm_rows)(M, rs, ss, bias, in, ld, n_s, r, n_pad, out, 4);
    for (; r + 2 <= n_r; r += 2)
        NN_S(nn_fm_rows)(M, rs, ss, bias, in, ld, n_s, r, n_pad, out, 2);
    for (; r < n_r; r++)
        NN_S(nn_fm_rows)(M, rs, ss, bias, in, ld, n_s, r, n_pad, out, 1);
}

/* Sum of a vector's lanes: add its rotation by half, a quarter, ... (lane 0 ends with
 * the total). */
NN_INLINE NN_T NN_S(nn_vsum)(NN_S(nn_vec) v)
{
    NN_S(nn_ivec) rot;
    for (ptrdiff_t half = NN_VL / 2; half >= 1; half /= 2) {
        for (ptrdiff_t i = 0; i < NN_VL; i++)
            rot[i] = (i + half) % NN_VL;
        v += __builtin_shuffle(v, rot);
    }
    return v[0];
}

/* G[(k0+i) n_out + j0 + q] (+)= sum_c AT[k0+i, c] DT[j0+q, c] for a kb x jb tile. */
NN_INLINE void NN_S(nn_fm_grad_tile)(const NN_T *AT, const NN_T *DT, ptrdiff_t ld,
                                     ptrdiff_t n_out, ptrdiff_t n_pad, ptrdiff_t k0,
                                     ptrdiff_t j0, NN_T *G, int accumulate, const int kb,
                                     const int jb)
{
    NN_S(nn_vec) acc[4][2];
    for (int i = 0; i < kb; i++)
        for (int q = 0; q < jb; q++)
            acc[i][q] = (NN_S(nn_vec)){0};
    for (ptrdiff_t c = 0; c < n_pad; c += NN_VL) {
        NN_S(nn_vec) d[2];
        for (int q = 0; q < jb; q++)
            d[q] = NN_VLOAD(DT + (j0 + q) * ld + c);
        for (int i = 0; i < kb; i++) {
            const NN_S(nn_vec) a = NN_VLOAD(AT + (k0 + i) * ld + c);
            for (int q = 0; q < jb; q++)
                acc[i][q] += a * d[q];
        }
    }
    for (int i = 0; i < kb; i++)
        for (int q = 0; q < jb; q++) {
            NN_T *g = G + (k0 + i) * n_out + j0 + q;
            const NN_T s = NN_S(nn_vsum)(acc[i][q]);
            *g = accumulate ? *g + s : s;
        }
}

NN_INLINE void NN_S(nn_fm_grad_rows)(const NN_T *AT, const NN_T *DT, ptrdiff_t ld,
                                     ptrdiff_t n_out, ptrdiff_t n_pad, ptrdiff_t k0, NN_T *G,
                                     int accumulate, const int kb)
{
    ptrdiff_t j = 0;
    for (; j + 2 <= n_out; j += 2)
        NN_S(nn_fm_grad_tile)(AT, DT, ld, n_out, n_pad, k0, j, G, accumulate, kb, 2);
    for (; j < n_out; j++)
        NN_S(nn_fm_grad_tile)(AT, DT, ld, n_out, n_pad, k0, j, G, accumulate, kb, 1);
}

NN_CLONES NN_FMA void NN_S(nn_fm_weight_grad)(const NN_T *AT, const NN_T *DT, ptrdiff_t ld,
                                              ptrdiff_t n_in, ptrdiff_t n_out, ptrdiff_t n_pad,
                                              NN_T *G, int accumulate)
{
    ptrdiff_t k = 0;
    for (; k + 4 <= n_in; k += 4)
        NN_S(nn_fm_grad_rows)(AT, DT, ld, n_out, n_pad, k, G, accumulate, 4);
    for (; k < n_in; k++)
        NN_S(nn_fm_grad_rows)(AT, DT, ld, n_out, n_pad, k, G, accumulate, 1);
}
/* Transpose a square tile of NN_VL vectors in registers: log2(NN_VL) stages, each
 * interleaving pairs of rows w apart at a granularity of w lanes (lane L of the pair's
 * first row takes, from the pair, lane lo[L], its second row lane hi[L]). The lane
 * tables are constants, so that each interleave is one two-source permute. */
#if NN_LANES == 16
#define NN_TP_STAGES 4
static const NN_S(nn_ivec) NN_S(nn_tp_lo)[NN_TP_STAGES] = {
    {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
    {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
    {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
    {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}};
static const NN_S(nn_ivec) NN_S(nn_tp_hi)[NN_TP_STAGES] = {
    {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31},
    {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31},
    {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31},
    {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}};
#else
#define NN_TP_STAGES 3
static const NN_S(nn_ivec) NN_S(nn_tp_lo)[NN_TP_STAGES] = {
    {0, 8, 2, 10, 4, 12, 6, 14},
    {0, 1, 8, 9, 4, 5, 12, 13},
    {0, 1, 2, 3, 8, 9, 10, 11}};
static const NN_S(nn_ivec) NN_S(nn_tp_hi)[NN_TP_STAGES] = {
    {1, 9, 3, 11, 5, 13, 7, 15},
    {2, 3, 10, 11, 6, 7, 14, 15},
    {4, 5, 6, 7, 12, 13, 14, 15}};
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
NN_INLINE void NN_S(nn_vtranspose)(NN_S(nn_vec) *r)
{
    NN_S(nn_vec) t[NN_LANES];
    _Pragma("GCC unroll 4") for (int s = 0; s < NN_TP_STAGES; s++) {
        const ptrdiff_t w = (ptrdiff_t)1 << s;
        _Pragma("GCC unroll 16") for (ptrdiff_t i = 0; i < NN_LANES; i++) {
            if ((i / w) % 2 == 0) {
                t[i] = __builtin_shuffle(r[i], r[i + w], NN_S(nn_tp_lo)[s]);
                t[i + w] = __builtin_shuffle(r[i], r[i + w], NN_S(nn_tp_hi)[s]);
            }
        }
        _Pragma("GCC unroll 16") for (ptrdiff_t i = 0; i < NN_LANES; i++)
            r[i] = t[i];
    }
}
#pragma GCC diagnostic pop
#undef NN_TP_STAGES

NN_CLONES void NN_S(nn_gather_cols)(NN_T *XT, ptrdiff_t ld, const NN_T *X, const int64_t *idx,
                                    ptrdiff_t n_cols, ptrdiff_t n_pad, ptrdiff_t n_in)
{
    /* Tiles of NN_VL samples x NN_VL features: load the rows' slices, transpose them in
     * registers, store whole vectors of XT. When n_in is at least NN_VL but no multiple
     * of it, the features past the last whole tile take one more tile, loaded at
     * n_in - NN_VL (inside every row), of which only the new features' vectors are
     * stored. Narrower rows, and the samples left over, go one by one. */
    ptrdiff_t c = 0;
    for (; c + NN_VL <= n_cols; c += NN_VL) {
        ptrdiff_t k = 0;
        while (n_in >= NN_VL && k < n_in) {
            const ptrdiff_t k0 = k + NN_VL <= n_in ? k : n_in - NN_VL;
            NN_S(nn_vec) r[NN_LANES];
            for (ptrdiff_t i = 0; i < NN_VL; i++)
                r[i] = NN_VLOAD(X + idx[c + i] * n_in + k0);
            NN_S(nn_vtranspose)(r);
            for (ptrdiff_t m = k - k0; m < NN_VL; m++)
                NN_VSTORE(XT + (k0 + m) * ld + c, r[m]);
            k = k0 + NN_VL;
        }
        for (; k < n_in; k++)
            for (ptrdiff_t i = 0; i < NN_VL; i++)
                XT[k * ld + c + i] = X[idx[c + i] * n_in + k];
    }
    for (; c < n_cols; c++)
        for (ptrdiff_t k = 0; k < n_in; k++)
            XT[k * ld + c] = X[idx[c] * n_in + k];
    for (ptrdiff_t k = 0; k < n_in; k++)
        for (c = n_cols; c < n_pad; c++)
            XT[k * ld + c] = (NN_T)0;
}
#undef NN_VLOAD
#undef NN_VSTORE
#undef NN_VL
#undef NN_VBYTES
#undef NN_FMA

#else /* no vector extensions: plain loops, same results up to rounding */

void NN_S(nn_fm_gemm)(const NN_T *M, ptrdiff_t rs, ptrdiff_t ss, const NN_T *bias,
                      const NN_T *in, ptrdiff_t ld, ptrdiff_t n_s, ptrdiff_t n_r, ptrdiff_t n_pad,
                      NN_T *out)
{
    for (ptrdiff_t r = 0; r < n_r; r++) {
        NN_T *o = out + r * ld;
        for (ptrdiff_t c = 0; c < n_pad; c++)
            o[c] = bias ? bias[r] : (NN_T)0;
        for (ptrdiff_t s = 0; s < n_s; s++) {
            const NN_T w = M[r * rs + s * ss], *x = in + s * ld;
            for (ptrdiff_t c = 0; c < n_pad; c++)
                o[c] += w * x[c];
        }
    }
}

void NN_S(nn_fm_weight_grad)(const NN_T *AT, const NN_T *DT, ptrdiff_t ld, ptrdiff_t n_in,
                             ptrdiff_t n_out, ptrdiff_t n_pad, NN_T *G, int accumulate)
{
    for (ptrdiff_t k = 0; k < n_in; k++)
        for (ptrdiff_t j = 0; j < n_out; j++) {
            NN_T s = 0;
            for (ptrdiff_t c = 0; c < n_pad; c++)
                s += AT[k * ld + c] * DT[j * ld + c];
            G[k * n_out + j] = accumulate ? G[k * n_out + j] + s : s;
        }
}

void NN_S(nn_gather_cols)(NN_T *XT, ptrdiff_t ld, const NN_T *X, const int64_t *idx,
                          ptrdiff_t n_cols, ptrdiff_t n_pad, ptrdiff_t n_in)
{
    for (ptrdiff_t c = 0; c < n_cols; c++)
        for (ptrdiff_t k = 0; k < n_in; k++)
            XT[k * ld + c] = X[idx[c] * n_in + k];
    for (ptrdiff_t k = 0; k < n_in; k++)
        for (ptrdiff_t c = n_cols; c < n_pad; c++)
            XT[k * ld + c] = (NN_T)0;
}
#endif

void NN_S(nn_transpose)(NN_T *out, ptrdiff_t ld_out, const NN_T *in, ptrdiff_t ld_in,
                        ptrdiff_t n_rows, ptrdiff_t n_cols)
{
    for (ptrdiff_t i = 0; i < n_rows; i++)
        for (ptrdiff_t j = 0; j < n_cols; j++)
            out[j * ld_out + i] = in[i * ld_in + j];
}

NN_INLINE void NN_S(nn_activate_body)(NN_T *H, ptrdiff_t n, int act)
{
    for (ptrdiff_t i = 0; i < n; i++)
        H[i] = NN_S(nn_act)(H[i], act);
}

/* With fused multiply-adds: tanh's polynomials take half the instructions. */
NN_CLONES NN_SMALL_FMA void NN_S(nn_activate)(NN_T *H, ptrdiff_t n, int act)
{
    switch (act) {
    case NN_ACT_TANH:
        NN_S(nn_activate_body)(H, n, NN_ACT_TANH);
        break;
    case NN_ACT_RELU:
        NN_S(nn_activate_body)(H, n, NN_ACT_RELU);
        break;
    case NN_ACT_LOGISTIC:
        NN_S(nn_activate_body)(H, n, NN_ACT_LOGISTIC);
        break;
    default:
        break;
    }
}

NN_CLONES void NN_S(nn_fm_dropout)(const NN_T *H, NN_T *A, NN_T *M, ptrdiff_t ld,
                                   ptrdiff_t n_units, ptrdiff_t n_pad, uint64_t key,
                                   int64_t col0, uint64_t thr, NN_T scale)
{
    /* Unit j of batch row col0 + c is hash counter e = (col0 + c) n_units + j + 1, as in
     * the row-major layout: the masks do not depend on the layout. Along a row e grows by
     * n_units, so the hash's input e G + key grows by n_units G (mod 2^64): one multiply
     * fewer per unit than nn_dropout_kept, the same bits. */
    const uint64_t step = (uint64_t)n_units * NN_GOLDEN;
    for (ptrdiff_t j = 0; j < n_units; j++) {
        const NN_T *h = H + j * ld;
        NN_T *a = A + j * ld, *m = M + j * ld;
        const uint64_t z0 = ((uint64_t)col0 * (uint64_t)n_units + (uint64_t)j + 1u) * NN_GOLDEN + key;
        for (ptrdiff_t c = 0; c < n_pad; c++) {
            const NN_T mv = nn_dropout_kept_z(z0 + (uint64_t)c * step, thr) ? scale : (NN_T)0;
            m[c] = mv;
            a[c] = h[c] * mv;
        }
    }
}

NN_CLONES void NN_S(nn_row_sums)(const NN_T *D, ptrdiff_t ld, ptrdiff_t n_rows, ptrdiff_t n_pad,
                                 NN_T *out, int accumulate)
{
    for (ptrdiff_t j = 0; j < n_rows; j++) {
        const NN_T *d = D + j * ld;
        NN_T s = 0;
#if defined(_OPENMP) || defined(NN_OPENMP_SIMD)
#pragma omp simd reduction(+ : s)
#endif
        for (ptrdiff_t c = 0; c < n_pad; c++)
            s += d[c];
        out[j] = accumulate ? out[j] + s : s;
    }
}

/* Columns of the feature-major loss whose per-sample scalars sit in stack buffers. */
#define NN_FM_LOSS_BLOCK 256

/* The loss of the output layer in the feature-major layout: D (k, ld) holds Z (bias
 * added) for batch columns 0 .. nc, samples idx[c]; overwritten with the gradient
 * (P - onehot(y)) sw or (Z - Y) sw, as nn_output_loss does row by row, the same
 * operations in the same order along each sample, but vectorized along the batch.
 * Returns sum_c sw_c L_c in double. */
NN_CLONES double NN_S(nn_fm_output_loss)(int output, NN_T *D, ptrdiff_t ld, ptrdiff_t k,
                                         ptrdiff_t nc, const int64_t *y, const NN_T *Y,
                                         const int64_t *idx, const NN_T *sw)
{
    const NN_T eps = NN_EPS, one_m_eps = (NN_T)1 - NN_EPS;
    double total = 0.0;
    NN_T aux[NN_FM_LOSS_BLOCK], w[NN_FM_LOSS_BLOCK];
    NN_I label[NN_FM_LOSS_BLOCK];
    double loss[NN_FM_LOSS_BLOCK], lq[NN_FM_LOSS_BLOCK];
    for (ptrdiff_t c0 = 0; c0 < nc; c0 += NN_FM_LOSS_BLOCK) {
        const ptrdiff_t n = nc - c0 < NN_FM_LOSS_BLOCK ? nc - c0 : NN_FM_LOSS_BLOCK;
        NN_T *D0 = D + c0;
        for (ptrdiff_t c = 0; c < n; c++)
            w[c] = sw ? sw[idx[c0 + c]] : (NN_T)1;
        if (output == NN_OUT_SOFTMAX) {
            /* max over the classes, exp of the shifted values, their sum, normalize */
            for (ptrdiff_t c = 0; c < n; c++)
                aux[c] = D0[c];
            for (ptrdiff_t j = 1; j < k; j++)
                for (ptrdiff_t c = 0; c < n; c++)
                    aux[c] = D0[j * ld + c] > aux[c] ? D0[j * ld + c] : aux[c];
            for (ptrdiff_t j = 0; j < k; j++)
                for (ptrdiff_t c = 0; c < n; c++)
                    D0[j * ld + c] = NN_EXPV(D0[j * ld + c] - aux[c]);
            for (ptrdiff_t c = 0; c < n; c++)
                aux[c] = D0[c];
            for (ptrdiff_t j = 1; j < k; j++)
                for (ptrdiff_t c = 0; c < n; c++)
                    aux[c] += D0[j * ld + c];
            for (ptrdiff_t j = 0; j < k; j++)
                for (ptrdiff_t c = 0; c < n; c++)
                    D0[j * ld + c] = D0[j * ld + c] / aux[c];
            /* The true class's probability, then P - onehot(y): class by class with a
             * select along the batch (vectorized), not one scattered access per sample. */
            for (ptrdiff_t c = 0; c < n; c++) {
                label[c] = (NN_I)y[idx[c0 + c]];
                aux[c] = (NN_T)0;
            }
            for (ptrdiff_t j = 0; j < k; j++) {
                NN_T *d = D0 + j * ld;
                for (ptrdiff_t c = 0; c < n; c++) {
                    const int hit = label[c] == (NN_I)j;
                    aux[c] = hit ? d[c] : aux[c];
                    d[c] -= hit ? (NN_T)1 : (NN_T)0;
                }
            }
            /* Clip (a NaN stays NaN, and reports the divergence), then widen: two loops
             * of one lane width each, both vectorized. */
            for (ptrdiff_t c = 0; c < n; c++) {
                const NN_T p = aux[c];
                aux[c] = p < eps ? eps : (p > one_m_eps ? one_m_eps : p);
            }
            for (ptrdiff_t c = 0; c < n; c++)
                loss[c] = (double)aux[c];
            NN_S(nn_neg_logs)(loss, n);
        } else {
            for (ptrdiff_t c = 0; c < n; c++)
                loss[c] = 0.0;
            for (ptrdiff_t j = 0; j < k; j++) {
                NN_T *d = D0 + j * ld;
                for (ptrdiff_t c = 0; c < n; c++)
                    aux[c] = Y[idx[c0 + c] * k + j];
                if (output == NN_OUT_EXP) {
                    for (ptrdiff_t c = 0; c < n; c++) {
                        const NN_T p = NN_EXPV(d[c]);
                        const double y64 = (double)aux[c];
                        loss[c] += NN_S(nn_ylogy)(y64) - y64 * (double)d[c] - y64 + (double)p;
                        d[c] = p - aux[c];
                    }
                } else if (output == NN_OUT_LOGISTIC) {
                    for (ptrdiff_t c = 0; c < n; c++) {
                        const NN_T p = (NN_T)1 / ((NN_T)1 + NN_EXPV(-d[c]));
                        NN_T pc = p < eps ? eps : p;
                        pc = pc > one_m_eps ? one_m_eps : pc;
                        lq[c] = (double)pc;
                        d[c] = p - aux[c];
                    }
                    for (ptrdiff_t c = 0; c < n; c++) {
                        const double y64 = (double)aux[c];
                        loss[c] += y64 * -nn_log_f64(lq[c]) + (1.0 - y64) * -nn_log_f64(1.0 - lq[c]);
                    }
                } else {
                    for (ptrdiff_t c = 0; c < n; c++) {
                        const NN_T g = d[c] - aux[c];
                        loss[c] += (double)g * (double)g;
                        d[c] = g;
                    }
                }
            }
            if (output == NN_OUT_IDENTITY)
                for (ptrdiff_t c = 0; c < n; c++)
                    loss[c] = 0.5 * loss[c];
        }
        if (sw)
            for (ptrdiff_t j = 0; j < k; j++)
                for (ptrdiff_t c = 0; c < n; c++)
                    D0[j * ld + c] *= w[c];
        double block = 0.0;
        if (sw) {
#if defined(_OPENMP) || defined(NN_OPENMP_SIMD)
#pragma omp simd reduction(+ : block)
#endif
            for (ptrdiff_t c = 0; c < n; c++)
                block += loss[c] * (double)w[c];
        } else {
#if defined(_OPENMP) || defined(NN_OPENMP_SIMD)
#pragma omp simd reduction(+ : block)
#endif
            for (ptrdiff_t c = 0; c < n; c++)
                block += loss[c];
        }
        total += block;
    }
    return total;
}

/*
 * Type-generic row-major GEMM of small matrices (nn_fused.h: nn_small_gemm).
 *
 * Deliberately no include guard: nn_fused.c includes this file once per real type, after
 * nn_small_impl.h, with NN_T, NN_S(name), NN_INLINE and NN_CLONES defined.
 *
 * The row-major step's products are small at narrow widths (W1: 32 x 64 . 64 x 32), where
 * a BLAS call costs about as much as its arithmetic. Three kinds are taken here
 * (nn_small_gemm decides): D W^T, which BLAS packs on its general path when the inner
 * dimension is short, A^T D of rows narrower than a vector, and the forward A W of
 * whole-vector rows; BLAS's small-matrix kernels keep the others. A tile of up to 8 rows of C x 2 vectors of its columns
 * stays in registers while the inner dimension streams through it: the elements of
 * op(A) broadcast (one a cycle: the tile's width halves their count per multiply-add),
 * the rows of B loaded whole. Fused multiply-adds: the results agree with BLAS's to the
 * parity tolerances, not to the bit.
 */

#if defined(__GNUC__)
#define NN_GV_BYTES 64
#ifndef NN_GEMM_RB
#define NN_GEMM_RB 8
#endif
typedef NN_T NN_S(nn_gvec) __attribute__((vector_size(NN_GV_BYTES), aligned(sizeof(NN_T))));
#define NN_GVL ((ptrdiff_t)(NN_GV_BYTES / sizeof(NN_T)))
#define NN_GLOAD(p) (*(const NN_S(nn_gvec) *)(p))
#define NN_GSTORE(p, v) (*(NN_S(nn_gvec) *)(p) = (v))

/* C[r0 + i, c + v VL ..] = alpha sum_s A[(r0 + i) ars + s ass] B[s, ..] (+ beta C) for a
 * tile of rb rows x cb vectors. */
NN_INLINE void NN_S(nn_gemm_tile)(const NN_T *A, ptrdiff_t ars, ptrdiff_t ass, const NN_T *B,
                                  ptrdiff_t ldb, ptrdiff_t k, NN_T alpha, NN_T beta, NN_T *C,
                                  ptrdiff_t ldc, ptrdiff_t r0, ptrdiff_t c, const int rb,
                                  const int cb)
{
    NN_S(nn_gvec) acc[NN_GEMM_RB][2];
    for (int i = 0; i < rb; i++)
        for (int v = 0; v < cb; v++)
            acc[i][v] = (NN_S(nn_gvec)){0};
    for (ptrdiff_t s = 0; s < k; s++) {
        const NN_T *b = B + s * ldb + c;
        NN_S(nn_gvec) bv[2];
        for (int v = 0; v < cb; v++)
            bv[v] = NN_GLOAD(b + v * NN_GVL);
        for (int i = 0; i < rb; i++) {
            const NN_T a = A[(r0 + i) * ars + s * ass];
            for (int v = 0; v < cb; v++)
                acc[i][v] += a * bv[v];
        }
    }
    for (int i = 0; i < rb; i++)
        for (int v = 0; v < cb; v++) {
            NN_T *o = C + (r0 + i) * ldc + c + v * NN_GVL;
            /* beta 0 reads nothing of C, as BLAS: C may hold NaN or garbage. */
            if (beta == (NN_T)0)
                NN_GSTORE(o, alpha * acc[i][v]);
            else
                NN_GSTORE(o, alpha * acc[i][v] + beta * NN_GLOAD(o));
        }
}

NN_INLINE void NN_S(nn_gemm_rows)(const NN_T *A, ptrdiff_t ars, ptrdiff_t ass, const NN_T *B,
                                  ptrdiff_t ldb, ptrdiff_t n, ptrdiff_t k, NN_T alpha,
                                  NN_T beta, NN_T *C, ptrdiff_t ldc, ptrdiff_t r0, const int rb)
{
    ptrdiff_t c = 0;
    for (; c + 2 * NN_GVL <= n; c += 2 * NN_GVL)
        NN_S(nn_gemm_tile)(A, ars, ass, B, ldb, k, alpha, beta, C, ldc, r0, c, rb, 2);
    for (; c < n; c += NN_GVL)
        NN_S(nn_gemm_tile)(A, ars, ass, B, ldb, k, alpha, beta, C, ldc, r0, c, rb, 1);
}

/* C = alpha op(A) B + beta C (element (r, s) of op(A) at A[r ars + s ass]) for n a whole
 * number of vectors: the tiles of 8, 4, 2 and 1 rows. */
NN_INLINE void NN_S(nn_gemm_run)(const NN_T *A, ptrdiff_t ars, ptrdiff_t ass, const NN_T *B,
                                 ptrdiff_t ldb, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                 NN_T alpha, NN_T beta, NN_T *C, ptrdiff_t ldc)
{
    ptrdiff_t r = 0;
#define NN_GEMM_ROWS(rb) NN_S(nn_gemm_rows)(A, ars, ass, B, ldb, n, k, alpha, beta, C, ldc, r, rb)
    for (; r + NN_GEMM_RB <= m; r += NN_GEMM_RB)
        NN_GEMM_ROWS(NN_GEMM_RB);
    for (; r + 4 <= m; r += 4)
        NN_GEMM_ROWS(4);
    for (; r + 2 <= m; r += 2)
        NN_GEMM_ROWS(2);
    for (; r < m; r++)
        NN_GEMM_ROWS(1);
#undef NN_GEMM_ROWS
}

NN_CLONES NN_SMALL_FMA int NN_S(nn_small_gemm)(int ta, int tb, ptrdiff_t m, ptrdiff_t n,
                                               ptrdiff_t k, NN_T alpha, const NN_T *A,
                                               ptrdiff_t lda, const NN_T *B, ptrdiff_t ldb,
                                               NN_T beta, NN_T *C, ptrdiff_t ldc)
{
    const ptrdiff_t np = (n + NN_GVL - 1) / NN_GVL * NN_GVL;
    NN_T P[NN_SMALL_GEMM_MAX], CP[NN_SMALL_GEMM_MAX];
    if (m <= 0 || n <= 0 || k <= 0 || m * np * k > NN_SMALL_GEMM_MAX_MNK)
        return 0;
    if (!tb) {
        /* A B of whole-vector rows (W1's forward 32 x 64 . 64 x 32: 979 ns in BLAS, 890
         * in the probe, 0.1-0.3 us less per step). A^T B of whole-vector rows runs as
         * fast in BLAS's small-matrix kernels (W1's update of 64 x 32: 942 ns there,
         * 1,000 here): left to it; but A^T B of narrow rows (W1's update of its 32 x 10
         * output layer) is taken as C^T = B^T A, whole vectors along C's columns, A's
         * rows; computed into CP, written back. */
        if (!ta && np == n) {
            NN_S(nn_gemm_run)(A, lda, 1, B, ldb, m, n, k, alpha, beta, C, ldc);
            return 1;
        }
        if (!ta || np == n || m % NN_GVL != 0 || m * n > NN_SMALL_GEMM_MAX)
            return 0;
        NN_S(nn_gemm_run)(B, 1, ldb, A, lda, n, m, k, (NN_T)1, (NN_T)0, CP, m);
        for (ptrdiff_t i = 0; i < m; i++) {
            NN_T *c = C + i * ldc;
            if (beta == (NN_T)0)
                for (ptrdiff_t j = 0; j < n; j++)
                    c[j] = alpha * CP[j * m + i];
            else
                for (ptrdiff_t j = 0; j < n; j++)
                    c[j] = alpha * CP[j * m + i] + beta * c[j];
        }
        return 1;
    }
    /* op(B) = B^T: its rows, strided columns of B, are copied to P, zero-padded to whole
     * vectors; rows of C narrower than that are computed into CP, then copied out. */
    if (k * np > NN_SMALL_GEMM_MAX || (np != n && m * np > NN_SMALL_GEMM_MAX))
        return 0;
    for (ptrdiff_t s = 0; s < k; s++) {
        NN_T *p = P + s * np;
        NN_GSTORE(p + np - NN_GVL, (NN_S(nn_gvec)){0});
        for (ptrdiff_t j = 0; j < n; j++)
            p[j] = B[j * ldb + s];
    }
    NN_T *Cw = np != n ? CP : C;
    const ptrdiff_t ldw = np != n ? np : ldc;
    const NN_T aw = np != n ? (NN_T)1 : alpha, bw = np != n ? (NN_T)0 : beta;
    NN_S(nn_gemm_run)(A, ta ? 1 : lda, ta ? lda : 1, P, np, m, np, k, aw, bw, Cw, ldw);
    if (np != n)
        for (ptrdiff_t i = 0; i < m; i++) {
            const NN_T *cp = CP + i * np;
            NN_T *c = C + i * ldc;
            if (beta == (NN_T)0)
                for (ptrdiff_t j = 0; j < n; j++)
                    c[j] = alpha * cp[j];
            else
                for (ptrdiff_t j = 0; j < n; j++)
                    c[j] = alpha * cp[j] + beta * c[j];
        }
    return 1;
}
#undef NN_GLOAD
#undef NN_GSTORE
#undef NN_GVL
#undef NN_GV_BYTES

#else /* no vector extensions: BLAS takes every shape */

int NN_S(nn_small_gemm)(int ta, int tb, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, NN_T alpha,
                        const NN_T *A, ptrdiff_t lda, const NN_T *B, ptrdiff_t ldb, NN_T beta,
                        NN_T *C, ptrdiff_t ldc)
{
    (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)A, (void)lda, (void)B;
    (void)ldb, (void)beta, (void)C, (void)ldc;
    return 0;
}
#endif

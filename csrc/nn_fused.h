#ifndef NNOPT_NN_FUSED_H_
#define NNOPT_NN_FUSED_H_

/*
 * Fused elementwise kernels of the Cython backend (float32 "_f32" and float64 "_f64").
 *
 * All matrices are row-major and contiguous; n_rows x n_cols. Activation codes are
 * those of nn_codes.h. The math of each kernel is the one of the reference kernel of
 * the same stem; the training step that calls them, and the GEMMs, are in nn_step.c.
 */

#include <stddef.h>
#include <stdint.h>

#include "nn_codes.h"

/* Which target_clones variant runs on this CPU: "x86-64-v4", "avx2" or "default". */
const char *nn_simd_path(void);
/* reference.dropout_key(seed, layer, step). */
uint64_t nn_dropout_key(uint64_t seed, uint64_t layer, uint64_t step);

/*
 * Prefetch rows idx[0..n) of a row-major array with row_bytes per row (e.g. the next
 * batch's samples, gathered at random from a training set larger than the caches).
 */
void nn_prefetch_rows(const void *base, size_t row_bytes, const int64_t *idx, ptrdiff_t n);

/* Vectorizable tanh of n values (out may be x). */
void nn_tanh_array_f32(float *out, const float *x, ptrdiff_t n);
void nn_tanh_array_f64(double *out, const double *x, ptrdiff_t n);

/* out[i, :] = X[idx[i], :]. */
void nn_gather_rows_f32(float *out, const float *X, const int64_t *idx, ptrdiff_t n_rows,
                        ptrdiff_t n_cols);
void nn_gather_rows_f64(double *out, const double *X, const int64_t *idx, ptrdiff_t n_rows,
                        ptrdiff_t n_cols);

/* H <- g(H + b) in place. */
void nn_bias_act_f32(float *H, const float *b, ptrdiff_t n_rows, ptrdiff_t n_cols, int act);
void nn_bias_act_f64(double *H, const double *b, ptrdiff_t n_rows, ptrdiff_t n_cols, int act);

/* H <- g(H + b); M <- dropout mask (rows row0..); A <- H * M. One pass. */
void nn_bias_act_dropout_f32(float *H, float *A, float *M, const float *b, ptrdiff_t n_rows,
                             ptrdiff_t n_cols, int act, uint64_t key, int64_t row0,
                             uint64_t thr, float scale);
void nn_bias_act_dropout_f64(double *H, double *A, double *M, const double *b,
                             ptrdiff_t n_rows, ptrdiff_t n_cols, int act, uint64_t key,
                             int64_t row0, uint64_t thr, double scale);

/* out = dA * g'(H) [* M] over n values; M may be NULL; out may be dA. */
void nn_act_backward_f32(float *out, const float *dA, const float *H, const float *M,
                         ptrdiff_t n, int act);
void nn_act_backward_f64(double *out, const double *dA, const double *H, const double *M,
                         ptrdiff_t n, int act);

/* reference.dropout_mask with key = nn_dropout_key(...), thr = dropout_threshold(keep). */
void nn_dropout_mask_f32(float *out, ptrdiff_t n_rows, ptrdiff_t n_cols, uint64_t key,
                         int64_t row0, uint64_t thr, float scale);
void nn_dropout_mask_f64(double *out, ptrdiff_t n_rows, ptrdiff_t n_cols, uint64_t key,
                         int64_t row0, uint64_t thr, double scale);

/*
 * Output losses: dZ <- gradient w.r.t. Z + b (b may be NULL), weighted by sw (may be NULL);
 * returns sum_i sw_i L_i in double. Targets and weights of batch row i are read at row
 * idx[i] (idx may be NULL: row i). dZ may be Z.
 */
double nn_softmax_xent_f32(float *dZ, const float *Z, const float *b, const int64_t *y,
                           const int64_t *idx, const float *sw, ptrdiff_t n_rows,
                           ptrdiff_t n_cols);
double nn_softmax_xent_f64(double *dZ, const double *Z, const double *b, const int64_t *y,
                           const int64_t *idx, const double *sw, ptrdiff_t n_rows,
                           ptrdiff_t n_cols);
double nn_logistic_xent_f32(float *dZ, const float *Z, const float *b, const float *Y,
                            const int64_t *idx, const float *sw, ptrdiff_t n_rows,
                            ptrdiff_t n_cols);
double nn_logistic_xent_f64(double *dZ, const double *Z, const double *b, const double *Y,
                            const int64_t *idx, const double *sw, ptrdiff_t n_rows,
                            ptrdiff_t n_cols);
double nn_squared_error_f32(float *dZ, const float *Z, const float *b, const float *Y,
                            const int64_t *idx, const float *sw, ptrdiff_t n_rows,
                            ptrdiff_t n_cols);
double nn_poisson_deviance_f32(float *dZ, const float *Z, const float *b, const float *Y,
                               const int64_t *idx, const float *sw, ptrdiff_t n_rows,
                               ptrdiff_t n_cols);
double nn_poisson_deviance_f64(double *dZ, const double *Z, const double *b, const double *Y,
                               const int64_t *idx, const double *sw, ptrdiff_t n_rows,
                               ptrdiff_t n_cols);
double nn_squared_error_f64(double *dZ, const double *Z, const double *b, const double *Y,
                            const int64_t *idx, const double *sw, ptrdiff_t n_rows,
                            ptrdiff_t n_cols);

/* Z <- the output layer's activation of Z in place: softmax row by row, logistic, or
 * nothing (identity); output is an NN_OUT_* code. */
void nn_output_activation_f32(int output, float *Z, ptrdiff_t n_rows, ptrdiff_t n_cols);
void nn_output_activation_f64(int output, double *Z, ptrdiff_t n_rows, ptrdiff_t n_cols);

/* Rows of a CSR matrix (float32 or float64 values, int64 indices). */
typedef struct {
    const float *data;
    const int64_t *indices;
    const int64_t *indptr;
} nn_csr_f32;
typedef struct {
    const double *data;
    const int64_t *indices;
    const int64_t *indptr;
} nn_csr_f64;

/* H[r, :] = sum over the non-zeros (col, v) of CSR row idx[r] of v W[col, :], for r < nb:
 * the first layer's product X_batch W on sparse X (H (nb, n_out) row-major). */
void nn_csr_gemm_f32(float *H, const nn_csr_f32 *X, const int64_t *idx, ptrdiff_t nb,
                     const float *W, ptrdiff_t n_out);
void nn_csr_gemm_f64(double *H, const nn_csr_f64 *X, const int64_t *idx, ptrdiff_t nb,
                     const double *W, ptrdiff_t n_out);
/* out[col - i0, :] += scale v D[r, :] for the non-zeros (col, v) of rows idx[r] with
 * i0 <= col < i1: rows i0 .. i1 of X_batch^T D, the first layer's weight gradient. */
void nn_csr_scatter_f32(float *out, ptrdiff_t n_out, ptrdiff_t i0, ptrdiff_t i1,
                        const nn_csr_f32 *X, const int64_t *idx, ptrdiff_t nb, const float *D,
                        float scale);
void nn_csr_scatter_f64(double *out, ptrdiff_t n_out, ptrdiff_t i0, ptrdiff_t i1,
                        const nn_csr_f64 *X, const int64_t *idx, ptrdiff_t nb, const double *D,
                        double scale);

/* Whether all n values are finite. */
int nn_all_finite_f32(const float *x, ptrdiff_t n);
int nn_all_finite_f64(const double *x, ptrdiff_t n);

/* out[j] = scale * sum_i D[i, j]. */
void nn_colsum_f32(float *out, const float *D, ptrdiff_t n_rows, ptrdiff_t n_cols, float scale);
void nn_colsum_f64(double *out, const double *D, ptrdiff_t n_rows, ptrdiff_t n_cols,
                   double scale);

/*
 * Optimizer steps on n parameters with the penalized gradient g = G (+ c2 W) (+ c1 sign W);
 * a zero coefficient skips its term. In place on W (and V, M).
 */
void nn_sgd_update_f32(float *W, const float *G, ptrdiff_t n, float lr, float c2, float c1);
void nn_sgd_update_f64(double *W, const double *G, ptrdiff_t n, double lr, double c2,
                       double c1);
void nn_momentum_update_f32(float *W, const float *G, float *V, ptrdiff_t n, float lr, float c2,
                            float c1, float mu);
void nn_momentum_update_f64(double *W, const double *G, double *V, ptrdiff_t n, double lr,
                            double c2, double c1, double mu);
void nn_nesterov_update_f32(float *W, const float *G, float *V, ptrdiff_t n, float lr, float c2,
                            float c1, float mu);
void nn_nesterov_update_f64(double *W, const double *G, double *V, ptrdiff_t n, double lr,
                            double c2, double c1, double mu);
void nn_adam_update_f32(float *W, const float *G, float *M, float *V, ptrdiff_t n, float c2,
                        float c1, float b1, float one_m_b1, float b2, float one_m_b2,
                        float lr_t, float eps);
void nn_adam_update_f64(double *W, const double *G, double *M, double *V, ptrdiff_t n,
                        double c2, double c1, double b1, double one_m_b1, double b2,
                        double one_m_b2, double lr_t, double eps);

/* W <- W - lr (dW + c W). */
void nn_l2_decay_step_f32(float *W, const float *dW, ptrdiff_t n, float lr, float c);
void nn_l2_decay_step_f64(double *W, const double *dW, ptrdiff_t n, double lr, double c);
/* dW <- dW (+ c2 W) (+ c1 sign W). */
void nn_add_penalty_grad_f32(float *dW, const float *W, ptrdiff_t n, float c2, float c1);
void nn_add_penalty_grad_f64(double *dW, const double *W, ptrdiff_t n, double c2, double c1);
/* W <- sign(W) max(|W| - thr, 0). */
void nn_l1_prox_f32(float *W, ptrdiff_t n, float thr);
void nn_l1_prox_f64(double *W, ptrdiff_t n, double thr);
/* s2 += sum W^2, s1 += sum |W| (unless s1 is NULL), in double. */
void nn_penalty_sums_f32(const float *W, ptrdiff_t n, double *s2, double *s1);
void nn_penalty_sums_f64(const double *W, ptrdiff_t n, double *s2, double *s1);

/*
 * Row-major C (m x n, row stride ldc) = alpha op(A) op(B) + beta C of small matrices
 * (nn_gemm_impl.h), op(A) m x k, op(B) k x n, op(X) = X^T when its flag is set; beta 0
 * reads nothing of C. Takes the products BLAS runs slowly at these sizes: op(B) = B^T,
 * A^T B of rows narrower than a vector with m a whole number of vectors, and A B of
 * whole-vector rows, when the copies fit NN_SMALL_GEMM_MAX elements and
 * m n k <= NN_SMALL_GEMM_MAX_MNK; returns 0, doing nothing, for the others (BLAS then
 * takes them).
 */
#define NN_SMALL_GEMM_MAX 4096
#define NN_SMALL_GEMM_MAX_MNK 131072
int nn_small_gemm_f32(int ta, int tb, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                      const float *A, ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta,
                      float *C, ptrdiff_t ldc);
int nn_small_gemm_f64(int ta, int tb, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, double alpha,
                      const double *A, ptrdiff_t lda, const double *B, ptrdiff_t ldb,
                      double beta, double *C, ptrdiff_t ldc);

/*
 * Small-matrix kernels of the feature-major layout (nn_small_impl.h): a layer's
 * activations are an (n_units, ld) block, one row of ld batch columns per unit; n_pad
 * columns (a multiple of 64 bytes' worth) are computed, ld >= n_pad.
 */
#define NN_DECLARE_SMALL(T, S)                                                              \
    /* out[r, c] = bias[r] + sum_s M[r rs + s ss] in[s, c] (bias may be NULL): forward      \
     * with M = W (rs 1, ss n_out), backward with M = W^T (rs n_out, ss 1). */               \
    void nn_fm_gemm##S(const T *M, ptrdiff_t rs, ptrdiff_t ss, const T *bias, const T *in,   \
                       ptrdiff_t ld, ptrdiff_t n_s, ptrdiff_t n_r, ptrdiff_t n_pad, T *out); \
    /* G[k, j] (+)= sum_c AT[k, c] DT[j, c]: the weight gradient of an n_in x n_out layer. */ \
    void nn_fm_weight_grad##S(const T *AT, const T *DT, ptrdiff_t ld, ptrdiff_t n_in,        \
                              ptrdiff_t n_out, ptrdiff_t n_pad, T *G, int accumulate);       \
    /* out[j] (+)= sum_c D[j, c]. */                                                          \
    void nn_row_sums##S(const T *D, ptrdiff_t ld, ptrdiff_t n_rows, ptrdiff_t n_pad, T *out,  \
                        int accumulate);                                                     \
    /* XT[k, c] = X[idx[c], k] for c < n_cols, 0 for n_cols <= c < n_pad. */                  \
    void nn_gather_cols##S(T *XT, ptrdiff_t ld, const T *X, const int64_t *idx,              \
                           ptrdiff_t n_cols, ptrdiff_t n_pad, ptrdiff_t n_in);               \
    /* out[j, i] = in[i, j] for i < n_rows, j < n_cols (row strides ld_out, ld_in). */        \
    void nn_transpose##S(T *out, ptrdiff_t ld_out, const T *in, ptrdiff_t ld_in,             \
                         ptrdiff_t n_rows, ptrdiff_t n_cols);                                \
    /* H <- g(H) over n values. */                                                            \
    void nn_activate##S(T *H, ptrdiff_t n, int act);                                         \
    /* M <- the dropout mask of batch rows col0.. (units x columns), A <- H * M. */          \
    void nn_fm_dropout##S(const T *H, T *A, T *M, ptrdiff_t ld, ptrdiff_t n_units,            \
                          ptrdiff_t n_pad, uint64_t key, int64_t col0, uint64_t thr, T scale); \
    /* The output layer's loss on D = Z (k, ld) for columns 0 .. nc, samples idx[c]: D <-   \
     * its gradient; returns sum_c sw_c L_c (see nn_output_loss). */                          \
    double nn_fm_output_loss##S(int output, T *D, ptrdiff_t ld, ptrdiff_t k, ptrdiff_t nc,     \
                                const int64_t *y, const T *Y, const int64_t *idx, const T *sw);

NN_DECLARE_SMALL(float, _f32)
NN_DECLARE_SMALL(double, _f64)
#undef NN_DECLARE_SMALL

#endif /* NNOPT_NN_FUSED_H_ */

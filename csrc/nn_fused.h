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

/* Which target_clones variant runs on this CPU: "avx512f", "avx2" or "default". */
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
double nn_squared_error_f64(double *dZ, const double *Z, const double *b, const double *Y,
                            const int64_t *idx, const double *sw, ptrdiff_t n_rows,
                            ptrdiff_t n_cols);

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
/* s2 += sum W^2, s1 += sum |W|, in double. */
void nn_penalty_sums_f32(const float *W, ptrdiff_t n, double *s2, double *s1);
void nn_penalty_sums_f64(const double *W, ptrdiff_t n, double *s2, double *s1);

#endif /* NNOPT_NN_FUSED_H_ */

#ifndef NNOPT_NN_FUSED_H_
#define NNOPT_NN_FUSED_H_

#include <stddef.h>

/* Z[i, j] = tanh(Z[i, j] + b[j]) in place, Z row-major (n_rows, n_cols). */
void nn_bias_tanh_f32(float *Z, const float *b, ptrdiff_t n_rows, ptrdiff_t n_cols);
void nn_bias_tanh_f64(double *Z, const double *b, ptrdiff_t n_rows, ptrdiff_t n_cols);

#endif /* NNOPT_NN_FUSED_H_ */

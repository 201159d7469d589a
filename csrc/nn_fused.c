#include <math.h>

#include "nn_fused.h"

void nn_bias_tanh_f32(float *Z, const float *b, ptrdiff_t n_rows, ptrdiff_t n_cols)
{
    ptrdiff_t i;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n_rows * n_cols > 65536)
#endif
    for (i = 0; i < n_rows; i++) {
        float *z = Z + i * n_cols;
        for (ptrdiff_t j = 0; j < n_cols; j++) z[j] = tanhf(z[j] + b[j]);
    }
}

void nn_bias_tanh_f64(double *Z, const double *b, ptrdiff_t n_rows, ptrdiff_t n_cols)
{
    ptrdiff_t i;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (n_rows * n_cols > 65536)
#endif
    for (i = 0; i < n_rows; i++) {
        double *z = Z + i * n_cols;
        for (ptrdiff_t j = 0; j < n_cols; j++) z[j] = tanh(z[j] + b[j]);
    }
}

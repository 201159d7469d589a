/*
 * The small-matrix kernels of the feature-major layout, each timed alone on the shapes of
 * a narrow network's training step (W6: 24-8-2 at batch 200; W7: 4-32-16-4 by chunks):
 * where the microseconds of a step go, without Python, BLAS or the rest of the step.
 *
 * Build and run from the repository root, with the extension's own flags:
 *
 *     gcc -O3 -ffp-contract=off -fno-math-errno -fopenmp-simd -DNN_OPENMP_SIMD \
 *         bench/probe_small_kernels.c csrc/nn_fused.c -Icsrc -lm -o /tmp/probe_small \
 *         && /tmp/probe_small [n_in hidden n_out batch]
 *
 * Each line is the fastest of many calls (the minimum filters out another process
 * taking the core), in nanoseconds per call and per element.
 */
#include "probe_timing.h"

#include "nn_fused.h"

int main(int argc, char **argv)
{
    const ptrdiff_t n_in = argc > 4 ? atoi(argv[1]) : 24, h = argc > 4 ? atoi(argv[2]) : 8;
    const ptrdiff_t k = argc > 4 ? atoi(argv[3]) : 2, nb = argc > 4 ? atoi(argv[4]) : 200;
    const ptrdiff_t ld = (nb + 15) / 16 * 16, n_rows = 100000;
    printf("simd %s; layer %td-%td-%td, batch %td (ld %td)\n", nn_simd_path(), n_in, h, k, nb,
           ld);
    float *X = fill((size_t)n_rows * n_in), *XT = fill((size_t)n_in * ld);
    float *W1 = fill((size_t)n_in * h), *b1 = fill((size_t)h), *W2 = fill((size_t)h * k);
    float *H = fill((size_t)h * ld), *A = fill((size_t)h * ld), *M = fill((size_t)h * ld);
    float *Z = fill((size_t)k * ld), *G = fill((size_t)n_in * h), *D = fill((size_t)h * ld);
    int64_t *idx = malloc((size_t)nb * sizeof(int64_t)), *y = malloc((size_t)n_rows * 8);
    for (ptrdiff_t i = 0; i < nb; i++)
        idx[i] = (int64_t)rand() % n_rows;
    for (ptrdiff_t i = 0; i < n_rows; i++)
        y[i] = rand() % k;
    const uint64_t key = 0x1234567887654321ull, thr = (uint64_t)(0.8 * (1 << 24));

    TIME("gather_cols, rows from DRAM", n_in * nb, nn_gather_cols_f32(XT, ld, X, idx, nb, ld, n_in));
    int64_t *near = malloc((size_t)nb * sizeof(int64_t));
    for (ptrdiff_t i = 0; i < nb; i++)
        near[i] = (int64_t)rand() % (2 * nb);
    TIME("gather_cols, rows in cache", n_in * nb,
         nn_gather_cols_f32(XT, ld, X, near, nb, ld, n_in));
    TIME("fm_gemm forward layer 1", n_in * h * ld,
         nn_fm_gemm_f32(W1, 1, h, b1, XT, ld, n_in, h, ld, H));
    TIME("activate tanh", h * ld, nn_activate_f32(H, h * ld, NN_ACT_TANH));
    TIME("fm_dropout", h * ld, nn_fm_dropout_f32(H, A, M, ld, h, ld, key, 0, thr, 1.25f));
    TIME("fm_gemm forward layer 2", h * k * ld, nn_fm_gemm_f32(W2, 1, k, b1, A, ld, h, k, ld, Z));
    TIME("fm_output_loss softmax", k * nb,
         nn_fm_output_loss_f32(NN_OUT_SOFTMAX, Z, ld, k, nb, y, NULL, idx, NULL));
    TIME("fm_gemm backward into layer 1", h * k * ld,
         nn_fm_gemm_f32(W2, k, 1, NULL, Z, ld, k, h, ld, D));
    TIME("act_backward tanh + mask", h * ld, nn_act_backward_f32(D, D, H, M, h * ld, NN_ACT_TANH));
    TIME("fm_weight_grad layer 1", n_in * h * ld,
         nn_fm_weight_grad_f32(XT, D, ld, n_in, h, ld, G, 0));
    TIME("row_sums layer 1", h * ld, nn_row_sums_f32(D, ld, h, ld, b1, 0));
    return 0;
}

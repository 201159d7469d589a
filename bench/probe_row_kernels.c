/*
 * The row-major step's own kernels (not BLAS's), each timed alone on the shapes of W1's
 * training step (64-32-10 at batch 32), data in L1: the companion of
 * probe_small_kernels.c for the row-major layout.
 *
 * Build and run from the repository root, with the extension's own flags:
 *
 *     gcc -O3 -ffp-contract=off -fno-math-errno -fopenmp-simd -DNN_OPENMP_SIMD \
 *         bench/probe_row_kernels.c csrc/nn_fused.c -Icsrc -lm -o /tmp/probe_rows \
 *         && /tmp/probe_rows [n_in hidden n_out batch]
 *
 * Each line is the fastest of many calls (the minimum filters out another process
 * taking the core), in nanoseconds per call and per element; "empty" is the timer's own.
 */
#define PROBE_REPS 20000
#include "probe_timing.h"

#include "nn_fused.h"

int main(int argc, char **argv)
{
    const ptrdiff_t n_in = argc > 4 ? atoi(argv[1]) : 64, h = argc > 4 ? atoi(argv[2]) : 32;
    const ptrdiff_t k = argc > 4 ? atoi(argv[3]) : 10, nb = argc > 4 ? atoi(argv[4]) : 32;
    printf("simd %s; layer %td-%td-%td, batch %td\n", nn_simd_path(), n_in, h, k, nb);
    float *W1 = fill((size_t)n_in * h), *b = fill((size_t)(h > k ? h : k)), *W2 = fill((size_t)h * k);
    float *H = fill((size_t)nb * h), *A = fill((size_t)nb * h), *M = fill((size_t)nb * h);
    float *Z = fill((size_t)nb * k), *D = fill((size_t)nb * h);
    int64_t *idx = malloc((size_t)nb * sizeof(int64_t)), *y = malloc((size_t)nb * sizeof(int64_t));
    for (ptrdiff_t i = 0; i < nb; i++) {
        idx[i] = i;
        y[i] = rand() % k;
    }
    const uint64_t key = 0x1234567887654321ull, thr = (uint64_t)(0.8 * (1 << 24));
    double s2 = 0.0, s1 = 0.0;
    volatile double sink;

    TIME("small_gemm D W^T (backward)", nb * k * h,
         nn_small_gemm_f32(0, 1, nb, h, k, 1.f, Z, k, W2, k, 0.f, D, h));
    TIME("small_gemm A^T D (narrow update)", nb * h * k,
         nn_small_gemm_f32(1, 0, h, k, nb, -0.01f, A, h, Z, k, 0.999f, W2, k));
    TIME("bias_act_dropout tanh", nb * h,
         nn_bias_act_dropout_f32(H, A, M, b, nb, h, NN_ACT_TANH, key, 0, thr, 1.25f));
    TIME("bias_act tanh", nb * h, nn_bias_act_f32(H, b, nb, h, NN_ACT_TANH));
    TIME("dropout_mask", nb * h, nn_dropout_mask_f32(M, nb, h, key, 0, thr, 1.25f));
    TIME("softmax_xent", nb * k, sink = nn_softmax_xent_f32(Z, Z, b, y, idx, NULL, nb, k));
    TIME("act_backward tanh + mask", nb * h, nn_act_backward_f32(D, D, H, M, nb * h, NN_ACT_TANH));
    TIME("colsum hidden", nb * h, nn_colsum_f32(b, D, nb, h, 1.f));
    TIME("colsum output", nb * k, nn_colsum_f32(b, Z, nb, k, 1.f));
    TIME("penalty_sums W1 (L2 and L1)", n_in * h, nn_penalty_sums_f32(W1, n_in * h, &s2, &s1));
    TIME("penalty_sums W1 (L2 alone)", n_in * h, nn_penalty_sums_f32(W1, n_in * h, &s2, NULL));
    TIME("empty", 1, (void)0);
    (void)sink;
    return 0;
}

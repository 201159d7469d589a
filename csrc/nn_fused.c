#include "nn_fused.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "nn_math.h"

/*
 * Hot loops are compiled for x86-64-v4 (AVX-512 F, BW, CD, DQ, VL: every AVX-512 server
 * core; DQ's 64-bit multiply speeds the dropout hash), AVX2 and baseline x86-64 and
 * picked at load time (GCC ifunc), so a portable build still runs wide vectors where the
 * CPU has them.
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define NN_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#define NN_HAVE_CLONES 1
#else
#define NN_CLONES
#define NN_HAVE_CLONES 0
#endif

/* Fused multiply-adds for loops whose results are checked to the parity tolerances
 * rather than to NumPy's rounding (the activations' polynomials: half the instructions). */
#if defined(__GNUC__)
#define NN_CONTRACT __attribute__((optimize("fp-contract=fast")))
#else
#define NN_CONTRACT
#endif

/* Forced inlining lets each activation's loop be specialized on a constant code. */
#if defined(__GNUC__)
#define NN_INLINE static inline __attribute__((always_inline))
#else
#define NN_INLINE static inline
#endif

const char *nn_simd_path(void)
{
#if NN_HAVE_CLONES
    /* The same priority order as the ifunc resolver of target_clones. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return "x86-64-v4";
    if (__builtin_cpu_supports("avx2"))
        return "avx2";
#endif
    return "default";
}

uint64_t nn_dropout_key(uint64_t seed, uint64_t layer, uint64_t step)
{
    uint64_t k = nn_mix64(seed);
    k = nn_mix64(k + (layer + 1u) * NN_GOLDEN);
    return nn_mix64(k + (step + 1u) * NN_GOLDEN);
}

void nn_prefetch_rows(const void *base, size_t row_bytes, const int64_t *idx, ptrdiff_t n)
{
#if defined(__GNUC__)
    const char *p = (const char *)base;
    for (ptrdiff_t i = 0; i < n; i++) {
        const char *row = p + (size_t)idx[i] * row_bytes;
        for (size_t off = 0; off < row_bytes; off += 64)
            __builtin_prefetch(row + off, 0, 3);
        /* The row need not start on a cache line: also touch its last byte. */
        if (row_bytes)
            __builtin_prefetch(row + row_bytes - 1, 0, 3);
    }
#else
    (void)base;
    (void)row_bytes;
    (void)idx;
    (void)n;
#endif
}

NN_CLONES void nn_tanh_array_f32(float *out, const float *x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = nn_tanh_f32(x[i]);
}

NN_CLONES void nn_tanh_array_f64(double *out, const double *x, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = nn_tanh_f64(x[i]);
}

#define NN_T float
#define NN_S(name) name##_f32
#define NN_TANH nn_tanh_f32
#define NN_EXP expf
#define NN_EXPV nn_exp_f32
#define NN_SQRT sqrtf
#define NN_FABS fabsf
#define NN_EPS FLT_EPSILON
#define NN_I int32_t
#define NN_LANES 16
#include "nn_fused_impl.h"
#include "nn_loss_impl.h"
#include "nn_small_impl.h"
#include "nn_gemm_impl.h"
#undef NN_I
#undef NN_LANES
#undef NN_T
#undef NN_S
#undef NN_TANH
#undef NN_EXP
#undef NN_EXPV
#undef NN_SQRT
#undef NN_FABS
#undef NN_EPS

#define NN_T double
#define NN_S(name) name##_f64
#define NN_TANH nn_tanh_f64
#define NN_EXP exp
#define NN_EXPV exp
#define NN_SQRT sqrt
#define NN_FABS fabs
#define NN_EPS DBL_EPSILON
#define NN_I int64_t
#define NN_LANES 8
#include "nn_fused_impl.h"
#include "nn_loss_impl.h"
#include "nn_small_impl.h"
#include "nn_gemm_impl.h"
#undef NN_I
#undef NN_LANES
#undef NN_T
#undef NN_S
#undef NN_TANH
#undef NN_EXP
#undef NN_EXPV
#undef NN_SQRT
#undef NN_FABS
#undef NN_EPS

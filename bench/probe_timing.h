/*
 * The timing harness of the kernel probes (probe_small_kernels.c, probe_row_kernels.c):
 * TIME(label, n_elems, stmt) prints the fastest of PROBE_REPS runs of stmt (the minimum
 * filters out another process taking the core), in nanoseconds per call and per element;
 * fill(n) gives n aligned floats in [-0.5, 0.5).
 */
#ifndef NN_PROBE_TIMING_H
#define NN_PROBE_TIMING_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef PROBE_REPS
#define PROBE_REPS 2000
#endif

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e9 * (double)t.tv_sec + (double)t.tv_nsec;
}

#define TIME(label, n_elems, stmt)                                                          \
    do {                                                                                     \
        double best = 1e30;                                                                  \
        for (int r_ = 0; r_ < PROBE_REPS; r_++) {                                            \
            const double t0_ = now_ns();                                                     \
            stmt;                                                                            \
            const double t_ = now_ns() - t0_;                                                \
            best = t_ < best ? t_ : best;                                                    \
        }                                                                                    \
        printf("%-34s %9.0f ns  %6.3f ns/element\n", label, best, best / (double)(n_elems)); \
    } while (0)

static float *fill(size_t n)
{
    float *a = aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64);
    for (size_t i = 0; i < n; i++)
        a[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return a;
}

#endif

/*
 * What two cores of this machine cost each other: the floor under any multithreaded
 * training step, measured without nnopt_fast's kernels.
 *
 * Build and run from the repository root (the barrier is the one the epochs use):
 *
 *     gcc -O3 -march=native -fopenmp bench/probe_cores.c csrc/nn_parallel.c -Icsrc \
 *         -o /tmp/probe_cores && /tmp/probe_cores
 *
 * It prints, each as the median of 5 runs:
 *   1. one barrier of two threads (nn_bar_wait);
 *   2. handing a buffer from one core to the other, as a sync step must hand over its
 *      weights or gradients: core A updates every float, barrier, core B reads every
 *      float, barrier; for W1's weights (2,410 floats) and W2's (234,752);
 *   3. a streaming read-modify-write of a 1 MB buffer (fits each core's L2) on one core
 *      alone, then on both cores at once, each on its own buffer: how much two busy
 *      cores slow each other's memory traffic.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn_parallel.h"

/* The barrier's abort flag: never raised here. */
static const volatile int32_t no_abort[2] = {0, 0};

#define RUNS 5

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v)
{
    qsort(v, RUNS, sizeof(double), cmp);
    return v[RUNS / 2];
}

/* Seconds per barrier. */
static double barrier_once(int reps)
{
    nn_barrier b;
    nn_bar_init(&b, 2);
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(2)
    for (int i = 0; i < reps; i++)
        nn_bar_wait(&b, no_abort);
    return (omp_get_wtime() - t0) / reps;
}

/* Seconds per hand-over of n floats (writer alternates, so both directions count). */
static double hand_over(float *buf, size_t n, int reps)
{
    nn_barrier b;
    nn_bar_init(&b, 2);
    float sink = 0.0f;
    double t0 = omp_get_wtime();
#pragma omp parallel num_threads(2) reduction(+ : sink)
    {
        int t = omp_get_thread_num();
        float s = 0.0f;
        for (int i = 0; i < reps; i++) {
            if (t == (i & 1))
                for (size_t j = 0; j < n; j++)
                    buf[j] = buf[j] * 0.5f + 1.0f;
            nn_bar_wait(&b, no_abort);
            if (t != (i & 1))
                for (size_t j = 0; j < n; j++)
                    s += buf[j];
            nn_bar_wait(&b, no_abort);
        }
        sink += s;
    }
    double dt = (omp_get_wtime() - t0) / reps;
    if (sink == 12345.0f)
        printf(" ");
    return dt;
}

/* Bytes per second of a read-modify-write sweep over each thread's own buffer. */
static double stream(int n_threads, size_t n, int reps)
{
    double rate = 0.0;
#pragma omp parallel num_threads(n_threads) reduction(+ : rate)
    {
        float *a = aligned_alloc(128, n * sizeof(float));
        for (size_t j = 0; j < n; j++)
            a[j] = 1.0f;
#pragma omp barrier
        double t0 = omp_get_wtime();
        for (int r = 0; r < reps; r++)
            for (size_t j = 0; j < n; j++)
                a[j] = a[j] * 0.999f + 1e-3f;
        double dt = omp_get_wtime() - t0;
        rate += 2.0 * n * sizeof(float) * reps / dt / n_threads;
        if (a[n / 2] == 12345.0f)
            printf(" ");
        free(a);
    }
    return rate;  /* per thread, averaged */
}

int main(void)
{
    double v[RUNS];
    size_t sizes[2] = {2410, 234752};
    const char *names[2] = {"W1 weights, 9.4 KB", "W2 weights, 917 KB"};
    float *buf = aligned_alloc(128, 234752 * sizeof(float));
    for (size_t j = 0; j < 234752; j++)
        buf[j] = 1.0f;

    for (int r = 0; r < RUNS; r++)
        v[r] = barrier_once(200000);
    printf("barrier, 2 threads: %.2f us\n", median(v) * 1e6);
    for (int k = 0; k < 2; k++) {
        for (int r = 0; r < RUNS; r++)
            v[r] = hand_over(buf, sizes[k], k ? 400 : 40000);
        printf("hand-over of %s (write, barrier, other core reads, barrier): %.2f us\n",
               names[k], median(v) * 1e6);
    }
    size_t n = (1u << 20) / sizeof(float);
    double one[RUNS], two[RUNS];
    for (int r = 0; r < RUNS; r++) {
        one[r] = stream(1, n, 2000);
        two[r] = stream(2, n, 2000);
    }
    double a = median(one), b = median(two);
    printf("1 MB read-modify-write sweep: %.1f GB/s on one core alone, %.1f GB/s per core "
           "with both busy (%.0f%% slower)\n", a / 1e9, b / 1e9, 100.0 * (1.0 - b / a));
    free(buf);
    return 0;
}

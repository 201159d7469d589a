#include "nn_parallel.h"

#include <sched.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Spins before yielding: ~10 us with the pause instruction of recent x86 cores. */
#define NN_BAR_SPINS 256

static inline void nn_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void nn_bar_init(nn_barrier *b, int n)
{
    b->count = 0;
    b->gen = 0;
    b->n = n;
}

void nn_bar_set_team(nn_barrier *b, int n)
{
    __atomic_store_n(&b->n, n, __ATOMIC_RELAXED);
}

void nn_bar_wait(nn_barrier *b)
{
    const int n = __atomic_load_n(&b->n, __ATOMIC_RELAXED);
    if (n <= 1)
        return;
    const unsigned int gen = __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == n) {
        /* Last to arrive: reset the count, then release the others. */
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->gen, gen + 1u, __ATOMIC_RELEASE);
        return;
    }
    for (int i = 0; __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) == gen; i++) {
        if (i < NN_BAR_SPINS)
            nn_cpu_relax();
        else
            sched_yield();
    }
}

int nn_par_team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

int nn_par_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

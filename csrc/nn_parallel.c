#include "nn_parallel.h"

#ifdef _WIN32
#include <windows.h>
#define nn_yield() SwitchToThread()
#else
#include <sched.h>
#define nn_yield() sched_yield()
#endif

/* Spins before yielding: ~10 us with the pause instruction of recent x86 cores. */
#define NN_BAR_SPINS 256

#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
/* MSVC: x86-64 loads acquire and stores release; the compiler barrier keeps the order. */
static inline unsigned int nn_load_gen(const unsigned int *p)
{
    const unsigned int v = *(const volatile unsigned int *)p;
    _ReadWriteBarrier();
    return v;
}
static inline void nn_store_gen(unsigned int *p, unsigned int v)
{
    _ReadWriteBarrier();
    *(volatile unsigned int *)p = v;
}
static inline int nn_arrive(int *count) { return (int)_InterlockedIncrement((volatile long *)count); }
static inline void nn_cpu_relax(void) { _mm_pause(); }
#else
static inline unsigned int nn_load_gen(const unsigned int *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void nn_store_gen(unsigned int *p, unsigned int v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline int nn_arrive(int *count) { return __atomic_add_fetch(count, 1, __ATOMIC_ACQ_REL); }
static inline void nn_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}
#endif

void nn_bar_init(nn_barrier *b, int n)
{
    b->count = 0;
    b->gen = 0;
    b->n = n;
}

int nn_bar_wait(nn_barrier *b, const volatile int32_t *abort)
{
    const int n = b->n;
    if (n <= 1)
        return abort[0] != 0;
    const unsigned int gen = nn_load_gen(&b->gen);
    if (nn_arrive(&b->count) == n) {
        /* Last to arrive: reset the count (no waiter reads it), then release the others. */
        b->count = 0;
        nn_store_gen(&b->gen, gen + 1u);
        return 0;
    }
    for (int i = 0; nn_load_gen(&b->gen) == gen; i++) {
        if (abort[0])
            return 1;
        if (i < NN_BAR_SPINS)
            nn_cpu_relax();
        else
            nn_yield();
    }
    return 0;
}

#include "nn_parallel.h"

#include <stdlib.h>

#ifdef _WIN32
#include <windows.h>
#define nn_yield() SwitchToThread()
#else
#include <pthread.h>
#include <sched.h>
#include <signal.h>
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
static inline int64_t nn_take(int64_t *counter)
{
    return _InterlockedExchangeAdd64((volatile __int64 *)counter, 1);
}
static inline int64_t nn_finish(int64_t *counter)
{
    return _InterlockedIncrement64((volatile __int64 *)counter);
}
static inline int64_t nn_load_count(const int64_t *p)
{
    const int64_t v = *(const volatile int64_t *)p;
    _ReadWriteBarrier();
    return v;
}
static inline int nn_release_ref(int *refs)
{
    return (int)_InterlockedDecrement((volatile long *)refs);
}
static inline void nn_keep_first(int *p, int v)
{
    _InterlockedCompareExchange((volatile long *)p, v, 0);
}
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
static inline int64_t nn_take(int64_t *counter)
{
    return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}
static inline int64_t nn_finish(int64_t *counter)
{
    return __atomic_add_fetch(counter, 1, __ATOMIC_RELEASE);
}
static inline int64_t nn_load_count(const int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline int nn_release_ref(int *refs)
{
    return __atomic_sub_fetch(refs, 1, __ATOMIC_ACQ_REL);
}
static inline void nn_keep_first(int *p, int v)
{
    int zero = 0;
    __atomic_compare_exchange_n(p, &zero, v, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}
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

/* The table of one nn_share_items call, on the heap: a helper that starts after the call
 * returned still reads it. Each counter owns its 128 bytes. */
typedef struct nn_share nn_share;
typedef struct {
    nn_share *share;
    int slot;
} nn_helper;
struct nn_share {
    int64_t next; /* the next item to take */
    char pad_next[120];
    int64_t done; /* items done */
    char pad_done[120];
    int refs;                /* the caller and the helpers that have not left */
    int status;              /* the first non-zero status of an item */
    int (*fn)(void *args, ptrdiff_t item, int slot);
    void *args;
    ptrdiff_t n_items;
    nn_helper helpers[]; /* [n_threads]; 0 unused */
};

/* Items until none is left. */
static void nn_share_work(nn_share *sh, int slot)
{
    for (int64_t item; (item = nn_take(&sh->next)) < sh->n_items;) {
        const int status = sh->fn(sh->args, (ptrdiff_t)item, slot);
        if (status)
            nn_keep_first(&sh->status, status);
        nn_finish(&sh->done);
    }
}

static void nn_share_leave(nn_share *sh)
{
    if (nn_release_ref(&sh->refs) == 0)
        free(sh);
}

#ifdef _WIN32
static DWORD WINAPI nn_helper_main(LPVOID p)
#else
static void *nn_helper_main(void *p)
#endif
{
    const nn_helper *h = p;
    nn_share *sh = h->share;
    nn_share_work(sh, h->slot);
    nn_share_leave(sh);
    return 0;
}

/* Start a detached helper thread on h; 0 if it could not be started. */
static int nn_start_helper(nn_helper *h)
{
#ifdef _WIN32
    HANDLE t = CreateThread(NULL, 0, nn_helper_main, h, 0, NULL);
    if (t == NULL)
        return 0;
    CloseHandle(t);
    return 1;
#else
    pthread_attr_t attr;
    pthread_t t;
    int ok;
    if (pthread_attr_init(&attr) != 0)
        return 0;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    ok = pthread_create(&t, &attr, nn_helper_main, h) == 0;
    pthread_attr_destroy(&attr);
    return ok;
#endif
}

int nn_share_items(int (*fn)(void *args, ptrdiff_t item, int slot), void *args,
                   ptrdiff_t n_items, int n_threads)
{
    int status = 0;
    n_threads = n_threads > NN_MAX_CALL_THREADS ? NN_MAX_CALL_THREADS : n_threads;
    n_threads = (ptrdiff_t)n_threads > n_items ? (int)n_items : n_threads;
    nn_share *sh = n_threads > 1 ? malloc(sizeof(nn_share) + (size_t)n_threads * sizeof(nn_helper))
                                 : NULL;
    if (!sh) {
        for (ptrdiff_t item = 0; item < n_items; item++) {
            const int s = fn(args, item, 0);
            status = status ? status : s;
        }
        return status;
    }
    sh->next = sh->done = 0;
    sh->status = 0;
    sh->fn = fn;
    sh->args = args;
    sh->n_items = n_items;
    sh->refs = n_threads;
#ifndef _WIN32
    /* A new thread inherits the signal mask of the thread that starts it. */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
#endif
    int started = 0;
    for (int t = 1; t < n_threads; t++) {
        sh->helpers[t].share = sh;
        sh->helpers[t].slot = t;
        started += nn_start_helper(&sh->helpers[t]);
    }
    /* No further helper will take a reference. */
    for (int t = 1 + started; t < n_threads; t++)
        nn_release_ref(&sh->refs);
#ifndef _WIN32
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
#endif
    nn_share_work(sh, 0);
    /* Every item is taken: wait for those in progress on the helpers (a helper runs the
     * item it took, so this is at most an item's time unless its core is taken away). */
    for (int i = 0; nn_load_count(&sh->done) < n_items; i++) {
        if (i < NN_BAR_SPINS)
            nn_cpu_relax();
        else
            nn_yield();
    }
    status = sh->status;
    nn_share_leave(sh);
    return status;
}

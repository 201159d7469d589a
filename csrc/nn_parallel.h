#ifndef NNOPT_NN_PARALLEL_H_
#define NNOPT_NN_PARALLEL_H_

#include <stddef.h>
#include <stdint.h>

/*
 * The barrier of the threaded epochs, whose threads nnopt_fast starts itself (one per
 * worker, for one epoch: nnopt_fast.kernels.team), and the helper threads of one
 * compiled call (the forward pass of a large inference call), started in C.
 *
 * nn_bar_wait spins a few microseconds (a partner thread on an idle core arrives in that
 * time), then calls sched_yield() between checks: on a machine busier than its cores, a
 * longer spin keeps the partner thread from the core it waits for (measured 100x slower
 * on W1 with libgomp's default barrier). A waiting thread also watches an abort flag, so
 * that a team whose worker failed, or which was asked to stop at once, never hangs.
 */

typedef struct {
    int count;         /* threads arrived in the current generation */
    unsigned int gen;  /* bumped by the last thread to arrive */
    int n;             /* team size */
    char pad[116];     /* the barrier owns its 128 bytes: no false sharing with data */
} nn_barrier;

/* Reset for a team of n threads (before the workers start). */
void nn_bar_init(nn_barrier *b, int n);
/*
 * Wait until the whole team arrives; a full memory barrier (acquire + release).
 * Returns 0, or 1 without waiting further once *abort is non-zero (the team's barrier
 * is then unusable for this epoch).
 */
int nn_bar_wait(nn_barrier *b, const volatile int32_t *abort);

/* The most threads one nn_share_items call runs on. */
#define NN_MAX_CALL_THREADS 64

/*
 * Items 0 .. n_items - 1 of one call (the row blocks of a forward pass), each done once
 * by fn(args, item, slot), on the calling thread (slot 0) and up to n_threads - 1 helper
 * threads started for the call (slots 1 ..); returns the first non-zero status an item
 * returned, or 0. Whoever is free takes the next item, so a helper that starts late, or
 * shares its core with another busy thread (an OpenBLAS worker spinning after its last
 * call, another process), leaves its share to the others. The call returns once every
 * item is done: it waits for the items helpers have taken, never for a helper to start.
 * A helper that starts after the last item was taken returns at once, touching only its
 * own small table (made for the call, freed by whoever leaves it last), never args; so
 * no thread of the call works after it returns, nothing outlives it but such a helper on
 * its way out, and a forked child inherits no thread, lock or pool. A helper that cannot
 * be started leaves its share to the others. Helpers start with every signal blocked:
 * signals go to the process's own (Python) threads.
 */
int nn_share_items(int (*fn)(void *args, ptrdiff_t item, int slot), void *args,
                   ptrdiff_t n_items, int n_threads);

#endif /* NNOPT_NN_PARALLEL_H_ */

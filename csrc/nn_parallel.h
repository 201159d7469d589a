#ifndef NNOPT_NN_PARALLEL_H_
#define NNOPT_NN_PARALLEL_H_

#include <stdint.h>

/*
 * The barrier of the threaded epochs, whose threads nnopt_fast starts itself (one per
 * worker, for one epoch: nnopt_fast.kernels.team).
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

#endif /* NNOPT_NN_PARALLEL_H_ */

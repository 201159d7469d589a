#ifndef NNOPT_NN_PARALLEL_H_
#define NNOPT_NN_PARALLEL_H_

/*
 * Thread helpers callable from inside a Cython `with nogil, parallel():` block.
 *
 * nn_bar_wait is a spin-then-yield barrier: a few microseconds of spinning (a partner
 * thread on an idle core arrives in that time), then sched_yield() between checks. On
 * a machine busier than its cores, libgomp's default barrier spins for up to ~0.3 M
 * iterations while the partner thread may wait for the same core: measured 100x slower
 * on W1 than this one. Without OpenMP the team has one thread and waiting returns.
 */

typedef struct {
    int count;         /* threads arrived in the current generation */
    unsigned int gen;  /* bumped by the last thread to arrive */
    int n;             /* team size; every thread stores the same value before waiting */
    char pad[116];     /* the barrier owns its 128 bytes: no false sharing with data */
} nn_barrier;

/* Reset before the parallel region. */
void nn_bar_init(nn_barrier *b, int n);
/* Declare the team size (call from each thread before its first wait). */
void nn_bar_set_team(nn_barrier *b, int n);
/* Wait until the whole team arrives; a full memory barrier (acquire + release). */
void nn_bar_wait(nn_barrier *b);

/* Threads in the current team (1 outside a parallel region or without OpenMP). */
int nn_par_team_size(void);
/* This thread's number in the current team, 0 .. team size - 1. */
int nn_par_thread_num(void);

#endif /* NNOPT_NN_PARALLEL_H_ */

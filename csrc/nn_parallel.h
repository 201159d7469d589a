#ifndef NNOPT_NN_PARALLEL_H_
#define NNOPT_NN_PARALLEL_H_

/*
 * OpenMP helpers callable from inside a Cython `with nogil, parallel():` block.
 *
 * An orphaned `#pragma omp barrier` binds to the innermost enclosing parallel region, so a
 * C function can synchronize the team that Cython started. Without OpenMP (a build with no
 * -fopenmp) there is one thread: the barrier does nothing, the team has one member.
 */

/* Wait until every thread of the current team reaches this call. */
void nn_par_barrier(void);
/* Threads in the current team (1 outside a parallel region or without OpenMP). */
int nn_par_team_size(void);
/* This thread's number in the current team, 0 .. team size - 1. */
int nn_par_thread_num(void);

#endif /* NNOPT_NN_PARALLEL_H_ */

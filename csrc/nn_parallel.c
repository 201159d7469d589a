#include "nn_parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

void nn_par_barrier(void)
{
#ifdef _OPENMP
    /* Orphaned: binds to the parallel region of the caller (GCC, OpenMP >= 2.5). */
#pragma omp barrier
#endif
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

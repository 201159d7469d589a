#include "nn_group.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <time.h>
#endif

/* Seconds on a monotonic clock (only differences mean anything). */
static double nn_now(void)
{
#ifdef _WIN32
    LARGE_INTEGER count, freq;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&freq);
    return (double)count.QuadPart / (double)freq.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

#define NN_DEFINE_GROUP(T, S)                                                               \
    void nn_group_serial##S(nn_job##S *jobs, ptrdiff_t n_jobs)                              \
    {                                                                                       \
        for (ptrdiff_t k = 0; k < n_jobs; k++) {                                            \
            nn_job##S *job = jobs + k;                                                      \
            const double t0 = nn_now();                                                     \
            job->status = nn_epoch_serial##S(job->plan, &job->state, &job->data,            \
                                             &job->epoch, job->work, &job->result);         \
            job->seconds = nn_now() - t0;                                                   \
        }                                                                                   \
    }

NN_DEFINE_GROUP(float, _f32)
NN_DEFINE_GROUP(double, _f64)

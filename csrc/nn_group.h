#ifndef NNOPT_NN_GROUP_H_
#define NNOPT_NN_GROUP_H_

/*
 * The group epoch: one epoch of each of several models, back to back on the calling
 * thread, in one call (nnopt_fast.kernels.group). Each model runs the serial epoch of
 * nn_step.h with its own plan, parameters and optimizer state, data, sample order and
 * counters, so that a model trained in a group is trained exactly as alone. The models
 * of one call share the calling thread's workspace: the serial epoch keeps nothing in
 * it from one batch to the next.
 */

#include <stddef.h>

#include "nn_step.h"

#define NN_DECLARE_GROUP(T, S)                                                              \
    /* One model's epoch: what nn_epoch_serial takes, and what it gives back (its sums,    \
     * its NN_STATUS_* and the seconds it took). */                                        \
    typedef struct {                                                                        \
        const nn_plan *plan;                                                                \
        nn_state##S state;                                                                  \
        nn_data##S data;                                                                    \
        nn_epoch epoch;                                                                     \
        T *work;                                                                            \
        nn_result result;                                                                   \
        int status;                                                                         \
        double seconds;                                                                     \
    } nn_job##S;                                                                            \
    /* Run jobs[0 .. n_jobs) in order. A job whose stop flag is raised returns             \
     * NN_STATUS_INTERRUPTED before its first batch (nn_epoch_serial polls it). */          \
    void nn_group_serial##S(nn_job##S *jobs, ptrdiff_t n_jobs);

NN_DECLARE_GROUP(float, _f32)
NN_DECLARE_GROUP(double, _f64)

#undef NN_DECLARE_GROUP

#endif /* NNOPT_NN_GROUP_H_ */

# The C declarations of the compiled backend (csrc/), for _cython.pyx.

from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from "nn_step.h" nogil:
    int NN_ACT_IDENTITY, NN_ACT_TANH, NN_ACT_RELU, NN_ACT_LOGISTIC
    int NN_OUT_SOFTMAX, NN_OUT_LOGISTIC, NN_OUT_IDENTITY, NN_OUT_EXP
    int NN_OPT_SGD, NN_OPT_MOMENTUM, NN_OPT_NESTEROV, NN_OPT_ADAM
    int NN_STATUS_OK, NN_STATUS_NONFINITE, NN_STATUS_ZERO_WEIGHT, NN_STATUS_INTERRUPTED
    int NN_LAYOUT_ROWS, NN_LAYOUT_FEATURES

    ctypedef void nn_sgemm_fn(char *, char *, int *, int *, int *, float *, float *, int *,
                              float *, int *, float *, float *, int *) noexcept nogil
    ctypedef void nn_dgemm_fn(char *, char *, int *, int *, int *, double *, double *, int *,
                              double *, int *, double *, double *, int *) noexcept nogil
    void nn_set_blas(nn_sgemm_fn *sgemm, nn_dgemm_fn *dgemm)

    ctypedef struct nn_plan:
        int n_layers, layout, activation, output, optimizer, fused_sgd, l1_proximal
        int l1_subgradient
        Py_ssize_t batch_size, chunk_cols, ld
        const int64_t *sizes
        const int64_t *param_offsets
        const int64_t *work_offsets
        const uint64_t *layer_keys
        const uint64_t *drop_threshold
        const double *keep_inv
        double l2, l1, penalty_div, momentum, beta1, beta2, adam_epsilon
    ctypedef struct nn_net:
        int n_layers, activation, output
        Py_ssize_t block_rows
        const int64_t *sizes
        const void **weights
        const void **biases
    int NN_MAX_CALL_THREADS
    int nn_forward_f32(const nn_net *net, const float *X, Py_ssize_t n_rows, int apply_output,
                       float *out, float *work, Py_ssize_t work_stride, int n_threads)
    int nn_forward_f64(const nn_net *net, const double *X, Py_ssize_t n_rows,
                       int apply_output, double *out, double *work, Py_ssize_t work_stride,
                       int n_threads)
    ctypedef struct nn_epoch:
        const int64_t *perm
        Py_ssize_t n_perm
        double lr
        int64_t step0, t0
        const int32_t *stop
    ctypedef struct nn_result:
        double data_loss, penalty_loss
        int64_t n_steps
    ctypedef struct nn_team:
        int n_threads
        void *thread_work
        Py_ssize_t work_stride
        void *thread_grads
        Py_ssize_t grads_stride
    nn_team *nn_team_create(int n_threads)
    void nn_team_destroy(nn_team *team)
    void nn_team_reset(nn_team *team)
    int nn_team_result(const nn_team *team, int hogwild, nn_result *res)

    ctypedef struct nn_state_f32:
        float *params
        float *grads
        float *velocity
        float *adam_m
        float *adam_v
    ctypedef struct nn_state_f64:
        double *params
        double *grads
        double *velocity
        double *adam_m
        double *adam_v
    ctypedef struct nn_csr_f32:
        const float *data
        const int64_t *indices
        const int64_t *indptr
    ctypedef struct nn_csr_f64:
        const double *data
        const int64_t *indices
        const int64_t *indptr
    ctypedef struct nn_data_f32:
        const float *X
        nn_csr_f32 X_csr
        const int64_t *y
        const float *Y
        const float *sw
    ctypedef struct nn_data_f64:
        const double *X
        nn_csr_f64 X_csr
        const int64_t *y
        const double *Y
        const double *sw
    int nn_epoch_serial_f32(const nn_plan *p, nn_state_f32 *st, const nn_data_f32 *data,
                            const nn_epoch *ep, float *work, nn_result *res)
    int nn_epoch_serial_f64(const nn_plan *p, nn_state_f64 *st, const nn_data_f64 *data,
                            const nn_epoch *ep, double *work, nn_result *res)
    void nn_sync_worker_f32(const nn_plan *p, nn_state_f32 *st, const nn_data_f32 *data,
                            const nn_epoch *ep, float *work, nn_team *team, int tid)
    void nn_sync_worker_f64(const nn_plan *p, nn_state_f64 *st, const nn_data_f64 *data,
                            const nn_epoch *ep, double *work, nn_team *team, int tid)
    void nn_hogwild_worker_f32(const nn_plan *p, nn_state_f32 *st, const nn_data_f32 *data,
                               const nn_epoch *ep, float *work, float *grads, nn_team *team,
                               int tid)
    void nn_hogwild_worker_f64(const nn_plan *p, nn_state_f64 *st, const nn_data_f64 *data,
                               const nn_epoch *ep, double *work, double *grads, nn_team *team,
                               int tid)
    void nn_dense_forward_f32(const float *A, const float *W, const float *b, Py_ssize_t n,
                              Py_ssize_t k, Py_ssize_t c, int act, float *out)
    void nn_dense_forward_f64(const double *A, const double *W, const double *b, Py_ssize_t n,
                              Py_ssize_t k, Py_ssize_t c, int act, double *out)
    void nn_dense_backward_f32(const float *dZ, const float *A, const float *W, Py_ssize_t n,
                               Py_ssize_t k, Py_ssize_t c, float scale, float *dW, float *db,
                               float *dA)
    void nn_dense_backward_f64(const double *dZ, const double *A, const double *W,
                               Py_ssize_t n, Py_ssize_t k, Py_ssize_t c, double scale,
                               double *dW, double *db, double *dA)
    double nn_output_loss_f32(int output, float *dZ, const float *Z, const float *b,
                              const int64_t *y, const float *Y, const int64_t *idx,
                              const float *sw, Py_ssize_t n_rows, Py_ssize_t n_cols)
    double nn_output_loss_f64(int output, double *dZ, const double *Z, const double *b,
                              const int64_t *y, const double *Y, const int64_t *idx,
                              const double *sw, Py_ssize_t n_rows, Py_ssize_t n_cols)

cdef extern from "nn_fused.h" nogil:
    const char *nn_simd_path()
    uint64_t nn_dropout_key(uint64_t seed, uint64_t layer, uint64_t step)
    void nn_tanh_array_f32(float *out, const float *x, Py_ssize_t n)
    void nn_tanh_array_f64(double *out, const double *x, Py_ssize_t n)
    void nn_act_backward_f32(float *out, const float *dA, const float *H, const float *M, Py_ssize_t n, int act)
    void nn_act_backward_f64(double *out, const double *dA, const double *H, const double *M, Py_ssize_t n, int act)
    void nn_dropout_mask_f32(float *out, Py_ssize_t n_rows, Py_ssize_t n_cols, uint64_t key, int64_t row0, uint64_t thr, float scale)
    void nn_dropout_mask_f64(double *out, Py_ssize_t n_rows, Py_ssize_t n_cols, uint64_t key, int64_t row0, uint64_t thr, double scale)
    void nn_sgd_update_f32(float *W, const float *G, Py_ssize_t n, float lr, float c2, float c1)
    void nn_sgd_update_f64(double *W, const double *G, Py_ssize_t n, double lr, double c2, double c1)
    void nn_momentum_update_f32(float *W, const float *G, float *V, Py_ssize_t n, float lr, float c2, float c1, float mu)
    void nn_momentum_update_f64(double *W, const double *G, double *V, Py_ssize_t n, double lr, double c2, double c1, double mu)
    void nn_nesterov_update_f32(float *W, const float *G, float *V, Py_ssize_t n, float lr, float c2, float c1, float mu)
    void nn_nesterov_update_f64(double *W, const double *G, double *V, Py_ssize_t n, double lr, double c2, double c1, double mu)
    void nn_adam_update_f32(float *W, const float *G, float *M, float *V, Py_ssize_t n, float c2, float c1, float b1, float one_m_b1, float b2, float one_m_b2, float lr_t, float eps)
    void nn_adam_update_f64(double *W, const double *G, double *M, double *V, Py_ssize_t n, double c2, double c1, double b1, double one_m_b1, double b2, double one_m_b2, double lr_t, double eps)
    void nn_l2_decay_step_f32(float *W, const float *dW, Py_ssize_t n, float lr, float c)
    void nn_l2_decay_step_f64(double *W, const double *dW, Py_ssize_t n, double lr, double c)
    void nn_add_penalty_grad_f32(float *dW, const float *W, Py_ssize_t n, float c2, float c1)
    void nn_add_penalty_grad_f64(double *dW, const double *W, Py_ssize_t n, double c2, double c1)
    void nn_l1_prox_f32(float *W, Py_ssize_t n, float thr)
    void nn_l1_prox_f64(double *W, Py_ssize_t n, double thr)
    void nn_penalty_sums_f32(const float *W, Py_ssize_t n, double *s2, double *s1)
    void nn_penalty_sums_f64(const double *W, Py_ssize_t n, double *s2, double *s1)

cdef extern from "nn_group.h" nogil:
    ctypedef struct nn_job_f32:
        const nn_plan *plan
        nn_state_f32 state
        nn_data_f32 data
        nn_epoch epoch
        float *work
        nn_result result
        int status
        double seconds
    ctypedef struct nn_job_f64:
        const nn_plan *plan
        nn_state_f64 state
        nn_data_f64 data
        nn_epoch epoch
        double *work
        nn_result result
        int status
        double seconds
    void nn_group_serial_f32(nn_job_f32 *jobs, Py_ssize_t n_jobs)
    void nn_group_serial_f64(nn_job_f64 *jobs, Py_ssize_t n_jobs)

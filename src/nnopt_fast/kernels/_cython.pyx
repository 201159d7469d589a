# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython layer of the compiled backend: the C training step's entry points and the single
kernels' typed bodies (``csrc/``; arguments are validated by ``kernels.dispatch``)."""

from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc

cimport numpy as cnp
from scipy.linalg.cython_blas cimport dgemm, sgemm

import numpy as _np

cnp.import_array()

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
    int nn_forward_f32(const nn_net *net, const float *X, Py_ssize_t n_rows, int apply_output,
                       float *out, float *work)
    int nn_forward_f64(const nn_net *net, const double *X, Py_ssize_t n_rows,
                       int apply_output, double *out, double *work)
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
    ctypedef struct nn_data_f32:
        const float *X
        const int64_t *y
        const float *Y
        const float *sw
    ctypedef struct nn_data_f64:
        const double *X
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

ctypedef fused floating:
    float
    double

nn_set_blas(<nn_sgemm_fn *>sgemm, <nn_dgemm_fn *>dgemm)


def codes():
    """The integer codes this extension was compiled with (``csrc/nn_codes.h``)."""
    return {
        "ACTIVATIONS": {"identity": NN_ACT_IDENTITY, "tanh": NN_ACT_TANH, "relu": NN_ACT_RELU,
                        "logistic": NN_ACT_LOGISTIC},
        "OUTPUTS": {"softmax": NN_OUT_SOFTMAX, "logistic": NN_OUT_LOGISTIC,
                    "identity": NN_OUT_IDENTITY, "exp": NN_OUT_EXP},
        "OPTIMIZERS": {"sgd": NN_OPT_SGD, "momentum": NN_OPT_MOMENTUM,
                       "nesterov": NN_OPT_NESTEROV, "adam": NN_OPT_ADAM},
        "STATUS": {"ok": NN_STATUS_OK, "nonfinite": NN_STATUS_NONFINITE,
                   "zero_weight": NN_STATUS_ZERO_WEIGHT, "interrupted": NN_STATUS_INTERRUPTED},
        "LAYOUTS": {"rows": NN_LAYOUT_ROWS, "features": NN_LAYOUT_FEATURES},
    }


cdef inline void *_ptr(object a) except? NULL:
    """The data of a contiguous array, or NULL for None or an empty array."""
    if a is None:
        return NULL
    cdef cnp.ndarray arr = a
    if cnp.PyArray_SIZE(arr) == 0:
        return NULL
    return cnp.PyArray_DATA(arr)


# ---------------------------------------------------------------------------
# the training step
# ---------------------------------------------------------------------------
cdef class CPlan:
    """An :class:`nnopt_fast.kernels.plan.EpochPlan` as the C ``nn_plan`` (built once per run).

    The plan's arrays stay referenced, which keeps the struct's pointers valid.
    """

    cdef nn_plan c
    cdef readonly object plan

    def __cinit__(self, plan):
        self.plan = plan
        self.c.n_layers = plan.n_layers
        self.c.layout = plan.layout
        self.c.chunk_cols = plan.chunk_cols
        self.c.ld = plan.ld
        self.c.activation = plan.activation
        self.c.output = plan.output
        self.c.optimizer = plan.optimizer
        self.c.fused_sgd = plan.fused_sgd
        self.c.l1_proximal = plan.l1_proximal
        self.c.l1_subgradient = plan.l1_subgradient
        self.c.batch_size = plan.batch_size
        self.c.sizes = <const int64_t *>_ptr(plan.sizes)
        self.c.param_offsets = <const int64_t *>_ptr(plan.param_offsets)
        self.c.work_offsets = <const int64_t *>_ptr(plan.work_offsets)
        self.c.layer_keys = <const uint64_t *>_ptr(plan.layer_keys)
        self.c.drop_threshold = <const uint64_t *>_ptr(plan.drop_threshold)
        self.c.keep_inv = <const double *>_ptr(plan.keep_inv)
        self.c.l2 = plan.l2
        self.c.l1 = plan.l1
        self.c.penalty_div = plan.penalty_div
        self.c.momentum = plan.momentum
        self.c.beta1 = plan.beta1
        self.c.beta2 = plan.beta2
        self.c.adam_epsilon = plan.adam_epsilon


cdef class Team:
    """The shared state of a threaded epoch's workers (``nn_team``): barrier, status, sums."""

    cdef nn_team *c
    cdef object buffers

    def __cinit__(self, int n_threads):
        self.c = nn_team_create(n_threads)
        if self.c == NULL:
            raise MemoryError("cannot allocate the thread team's tables")

    def __dealloc__(self):
        nn_team_destroy(self.c)

    def reset(self):
        nn_team_reset(self.c)

    def set_buffers(self, work, grads):
        """Per-thread workspaces and gradient buffers (row t of each 2-D C-contiguous
        array, of the model's dtype) for the features-layout sync epoch."""
        self.buffers = (work, grads)
        self.c.thread_work = _ptr(work)
        self.c.work_stride = work.strides[0] // work.itemsize
        self.c.thread_grads = _ptr(grads)
        self.c.grads_stride = grads.strides[0] // grads.itemsize

    def result(self, bint hogwild):
        """``(data_loss, penalty_loss, n_steps, status)`` once every worker returned."""
        cdef nn_result res
        cdef int status = nn_team_result(self.c, hogwild, &res)
        return res.data_loss, res.penalty_loss, res.n_steps, status


cdef class Epoch:
    """One call of an epoch: the run's plan and arrays as the C step's structs.

    ``state`` is the run's ``TrainState`` and ``data`` its ``EpochData``; both were
    validated by ``kernels.epoch.check_epoch`` (C-contiguous, one float dtype).
    """

    cdef CPlan plan
    cdef bint single
    cdef nn_state_f32 st32
    cdef nn_state_f64 st64
    cdef nn_data_f32 d32
    cdef nn_data_f64 d64
    cdef nn_epoch ep
    cdef object keep

    def __cinit__(self, CPlan plan, state, data, perm, double lr, int64_t step0, stop):
        self.plan = plan
        self.single = state.params.dtype.itemsize == 4
        # The arrays must outlive the pointers below.
        self.keep = (state, data, perm, stop)
        if self.single:
            self.st32.params = <float *>_ptr(state.params)
            self.st32.grads = <float *>_ptr(state.grads)
            self.st32.velocity = <float *>_ptr(state.velocity)
            self.st32.adam_m = <float *>_ptr(state.m)
            self.st32.adam_v = <float *>_ptr(state.v)
            self.d32.X = <const float *>_ptr(data.X)
            self.d32.y = <const int64_t *>_ptr(data.y)
            self.d32.Y = <const float *>_ptr(data.Y)
            self.d32.sw = <const float *>_ptr(data.sw)
        else:
            self.st64.params = <double *>_ptr(state.params)
            self.st64.grads = <double *>_ptr(state.grads)
            self.st64.velocity = <double *>_ptr(state.velocity)
            self.st64.adam_m = <double *>_ptr(state.m)
            self.st64.adam_v = <double *>_ptr(state.v)
            self.d64.X = <const double *>_ptr(data.X)
            self.d64.y = <const int64_t *>_ptr(data.y)
            self.d64.Y = <const double *>_ptr(data.Y)
            self.d64.sw = <const double *>_ptr(data.sw)
        self.ep.perm = <const int64_t *>_ptr(perm)
        self.ep.n_perm = perm.shape[0]
        self.ep.lr = lr
        self.ep.step0 = step0
        self.ep.t0 = state.t
        self.ep.stop = <const int32_t *>_ptr(stop)

    def serial(self, work):
        """The epoch on this thread, in workspace ``work``;
        ``(data_loss, penalty_loss, n_steps, status)``."""
        cdef nn_result res
        cdef int status
        cdef void *w = _ptr(work)
        with nogil:
            if self.single:
                status = nn_epoch_serial_f32(&self.plan.c, &self.st32, &self.d32, &self.ep,
                                             <float *>w, &res)
            else:
                status = nn_epoch_serial_f64(&self.plan.c, &self.st64, &self.d64, &self.ep,
                                             <double *>w, &res)
        return res.data_loss, res.penalty_loss, res.n_steps, status

    def sync_worker(self, Team team, work, int tid):
        """Thread ``tid`` of the sync data-parallel epoch (every thread shares ``work``)."""
        cdef void *w = _ptr(work)
        with nogil:
            if self.single:
                nn_sync_worker_f32(&self.plan.c, &self.st32, &self.d32, &self.ep, <float *>w,
                                   team.c, tid)
            else:
                nn_sync_worker_f64(&self.plan.c, &self.st64, &self.d64, &self.ep, <double *>w,
                                   team.c, tid)

    def hogwild_worker(self, Team team, work, grads, int tid):
        """Thread ``tid`` of the Hogwild epoch, in its own ``work`` and ``grads``."""
        cdef void *w = _ptr(work)
        cdef void *g = _ptr(grads)
        with nogil:
            if self.single:
                nn_hogwild_worker_f32(&self.plan.c, &self.st32, &self.d32, &self.ep,
                                      <float *>w, <float *>g, team.c, tid)
            else:
                nn_hogwild_worker_f64(&self.plan.c, &self.st64, &self.d64, &self.ep,
                                      <double *>w, <double *>g, team.c, tid)


# ---------------------------------------------------------------------------
# inference
# ---------------------------------------------------------------------------
cdef class Net:
    """A network for the compiled forward pass (``nn_forward``): its layers' weights
    (C-contiguous arrays of one dtype, kept referenced), activation codes and a workspace
    of two blocks of ``block_rows`` rows of its widest hidden layer."""

    cdef nn_net c
    cdef const void **pointers
    cdef object keep
    cdef object work
    cdef bint single
    cdef readonly object dtype

    def __cinit__(self, coefs, intercepts, int activation, int output,
                  Py_ssize_t block_rows=256):
        cdef Py_ssize_t L = len(coefs), l
        sizes = _np.array([coefs[0].shape[0]] + [W.shape[1] for W in coefs], dtype=_np.int64)
        self.pointers = <const void **>malloc(2 * L * sizeof(void *))
        if self.pointers == NULL:
            raise MemoryError("cannot allocate the network's pointer table")
        for l in range(L):
            self.pointers[l] = _ptr(coefs[l])
            self.pointers[L + l] = _ptr(intercepts[l])
        self.keep = (tuple(coefs), tuple(intercepts), sizes)
        self.dtype = coefs[0].dtype
        self.single = self.dtype.itemsize == 4
        widest = max([1] + [int(n) for n in sizes[1:-1]])
        self.work = _np.empty(2 * block_rows * widest, dtype=self.dtype)
        self.c.n_layers = L
        self.c.activation = activation
        self.c.output = output
        self.c.block_rows = block_rows
        self.c.sizes = <const int64_t *>_ptr(sizes)
        self.c.weights = self.pointers
        self.c.biases = self.pointers + L

    def __dealloc__(self):
        free(self.pointers)

    def run(self, X, out, bint apply_output):
        """``out`` <- the output layer's pre-activations (or activations) for rows X;
        returns an ``STATUS`` code (``nonfinite``: X holds NaN or infinity)."""
        cdef Py_ssize_t n = X.shape[0]
        cdef void *x = _ptr(X)
        cdef void *o = _ptr(out)
        cdef void *w = _ptr(self.work)
        cdef int status = NN_STATUS_OK
        if n == 0 or o == NULL:
            return status
        with nogil:
            if self.single:
                status = nn_forward_f32(&self.c, <const float *>x, n, apply_output,
                                        <float *>o, <float *>w)
            else:
                status = nn_forward_f64(&self.c, <const double *>x, n, apply_output,
                                        <double *>o, <double *>w)
        return status


# ---------------------------------------------------------------------------
# single kernels: the bodies behind kernels.dispatch (arrays validated there)
# ---------------------------------------------------------------------------
def simd_path():
    """The target_clones variant chosen on this CPU."""
    return nn_simd_path().decode()


def dropout_key(uint64_t seed, uint64_t layer, uint64_t step):
    """reference.dropout_key, computed in C."""
    return nn_dropout_key(seed, layer, step)


def tanh(const floating[::1] x, floating[::1] out):
    """``out = tanh(x)`` with the vectorized approximation of the fused kernels."""
    cdef Py_ssize_t n = x.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is float:
            nn_tanh_array_f32(&out[0], &x[0], n)
        else:
            nn_tanh_array_f64(&out[0], &x[0], n)


def dense_forward(const floating[:, ::1] A, const floating[:, ::1] W, const floating[::1] b,
                  int act, floating[:, ::1] out):
    """``out = g(A @ W + b)``: one GEMM, then one fused bias + activation pass."""
    cdef Py_ssize_t n = A.shape[0], k = A.shape[1], c = W.shape[1]
    if n == 0 or c == 0:
        return
    with nogil:
        if floating is float:
            nn_dense_forward_f32(&A[0, 0] if k else NULL, &W[0, 0] if k else NULL, &b[0], n,
                                 k, c, act, &out[0, 0])
        else:
            nn_dense_forward_f64(&A[0, 0] if k else NULL, &W[0, 0] if k else NULL, &b[0], n,
                                 k, c, act, &out[0, 0])


def act_backward(const floating[::1] H, const floating[::1] dA, int act, floating[::1] out,
                 M):
    """``out = dA * g'(H) [* M]`` on flat arrays; ``M`` is a flat array or None."""
    cdef Py_ssize_t n = H.shape[0]
    cdef const floating[::1] Mv
    cdef const floating *mp = NULL
    if n == 0:
        return
    if M is not None:
        Mv = M
        mp = &Mv[0]
    with nogil:
        if floating is float:
            nn_act_backward_f32(&out[0], &dA[0], &H[0], mp, n, act)
        else:
            nn_act_backward_f64(&out[0], &dA[0], &H[0], mp, n, act)


def dropout_mask(uint64_t key, int64_t row0, uint64_t thr, double keep_inv,
                 floating[:, ::1] out):
    """Fill ``out`` with the inverted-dropout mask of stream ``key`` from row ``row0``."""
    if out.shape[0] == 0 or out.shape[1] == 0:
        return
    with nogil:
        if floating is float:
            nn_dropout_mask_f32(&out[0, 0], out.shape[0], out.shape[1], key, row0, thr,
                                <float>keep_inv)
        else:
            nn_dropout_mask_f64(&out[0, 0], out.shape[0], out.shape[1], key, row0, thr,
                                keep_inv)


def output_loss(int code, const floating[:, ::1] Z, T, sw, floating[:, ::1] out):
    """Loss of output ``code`` on ``Z`` (no bias); writes the gradient; returns the sum."""
    cdef const int64_t *y = <const int64_t *>_ptr(T) if code == NN_OUT_SOFTMAX else NULL
    cdef const floating *Y = NULL if code == NN_OUT_SOFTMAX else <const floating *>_ptr(T)
    cdef const floating *swp = <const floating *>_ptr(sw)
    cdef double total
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        return 0.0
    with nogil:
        if floating is float:
            total = nn_output_loss_f32(code, &out[0, 0], &Z[0, 0], NULL, y, Y, NULL, swp,
                                       Z.shape[0], Z.shape[1])
        else:
            total = nn_output_loss_f64(code, &out[0, 0], &Z[0, 0], NULL, y, Y, NULL, swp,
                                       Z.shape[0], Z.shape[1])
    return total


def dense_backward(const floating[:, ::1] dZ, const floating[:, ::1] A,
                   const floating[:, ::1] W, double scale, floating[:, ::1] dW,
                   floating[::1] db, dA):
    """``dW = scale A^T dZ``, ``db = scale sum(dZ)``, and ``dA = dZ W^T`` unless dA is None."""
    cdef Py_ssize_t n = dZ.shape[0], c = dZ.shape[1], k = A.shape[1]
    cdef floating *dAp = <floating *>_ptr(dA)
    with nogil:
        if floating is float:
            nn_dense_backward_f32(&dZ[0, 0] if n and c else NULL, &A[0, 0] if n and k else NULL,
                                  &W[0, 0] if k and c else NULL, n, k, c, <float>scale,
                                  &dW[0, 0] if k and c else NULL, &db[0] if c else NULL, dAp)
        else:
            nn_dense_backward_f64(&dZ[0, 0] if n and c else NULL, &A[0, 0] if n and k else NULL,
                                  &W[0, 0] if k and c else NULL, n, k, c, scale,
                                  &dW[0, 0] if k and c else NULL, &db[0] if c else NULL, dAp)


def add_penalty_grad(floating[::1] dW, const floating[::1] W, double c2, double c1):
    """``dW += c2 W + c1 sign(W)`` in place (a zero coefficient skips its term)."""
    if dW.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            nn_add_penalty_grad_f32(&dW[0], &W[0], dW.shape[0], <float>c2, <float>c1)
        else:
            nn_add_penalty_grad_f64(&dW[0], &W[0], dW.shape[0], c2, c1)


def l2_decay_step(floating[::1] W, const floating[::1] dW, double lr, double c):
    """``W -= lr (dW + c W)`` in place."""
    if W.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            nn_l2_decay_step_f32(&W[0], &dW[0], W.shape[0], <float>lr, <float>c)
        else:
            nn_l2_decay_step_f64(&W[0], &dW[0], W.shape[0], lr, c)


def l1_prox(floating[::1] W, double thr):
    """Soft threshold in place."""
    if W.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            nn_l1_prox_f32(&W[0], W.shape[0], <float>thr)
        else:
            nn_l1_prox_f64(&W[0], W.shape[0], thr)


def sgd_step(floating[::1] W, const floating[::1] g, double lr):
    """``W -= lr g`` in place."""
    if W.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            nn_sgd_update_f32(&W[0], &g[0], W.shape[0], <float>lr, 0, 0)
        else:
            nn_sgd_update_f64(&W[0], &g[0], W.shape[0], lr, 0, 0)


def momentum_step(floating[::1] W, const floating[::1] g, floating[::1] V, double lr,
                  double mu, bint nesterov):
    """Heavy-ball (or Nesterov) momentum in place."""
    if W.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            if nesterov:
                nn_nesterov_update_f32(&W[0], &g[0], &V[0], W.shape[0], <float>lr, 0, 0, <float>mu)
            else:
                nn_momentum_update_f32(&W[0], &g[0], &V[0], W.shape[0], <float>lr, 0, 0, <float>mu)
        else:
            if nesterov:
                nn_nesterov_update_f64(&W[0], &g[0], &V[0], W.shape[0], lr, 0, 0, mu)
            else:
                nn_momentum_update_f64(&W[0], &g[0], &V[0], W.shape[0], lr, 0, 0, mu)


def adam_step(floating[::1] W, const floating[::1] g, floating[::1] M, floating[::1] V,
              double lr_t, double b1, double b2, double eps):
    """Adam in place with the bias-corrected step size ``lr_t``."""
    if W.shape[0] == 0:
        return
    with nogil:
        if floating is float:
            nn_adam_update_f32(&W[0], &g[0], &M[0], &V[0], W.shape[0], 0, 0, <float>b1,
                               <float>(1.0 - b1), <float>b2, <float>(1.0 - b2), <float>lr_t,
                               <float>eps)
        else:
            nn_adam_update_f64(&W[0], &g[0], &M[0], &V[0], W.shape[0], 0, 0, b1, 1.0 - b1, b2,
                               1.0 - b2, lr_t, eps)


def penalty_sums(const floating[::1] W):
    """``(sum W^2, sum |W|)`` in double."""
    cdef double s2 = 0.0, s1 = 0.0
    if W.shape[0]:
        with nogil:
            if floating is float:
                nn_penalty_sums_f32(&W[0], W.shape[0], &s2, &s1)
            else:
                nn_penalty_sums_f64(&W[0], W.shape[0], &s2, &s1)
    return s2, s1

# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython layer of the compiled backend: the C training step's entry points and the single
kernels' typed bodies (``csrc/``; arguments are validated by ``kernels.dispatch``)."""

from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.stdlib cimport free, malloc

cimport numpy as cnp
from scipy.linalg.cython_blas cimport dgemm, sgemm

import numpy as _np

cnp.import_array()

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
        sparse = not isinstance(data.X, _np.ndarray)
        X = None if sparse else data.X
        Xd = data.X.data if sparse else None
        Xi = data.X.indices if sparse else None
        Xp = data.X.indptr if sparse else None
        if self.single:
            self.st32.params = <float *>_ptr(state.params)
            self.st32.grads = <float *>_ptr(state.grads)
            self.st32.velocity = <float *>_ptr(state.velocity)
            self.st32.adam_m = <float *>_ptr(state.m)
            self.st32.adam_v = <float *>_ptr(state.v)
            self.d32.X = <const float *>_ptr(X)
            self.d32.X_csr.data = <const float *>_ptr(Xd)
            self.d32.X_csr.indices = <const int64_t *>_ptr(Xi)
            self.d32.X_csr.indptr = <const int64_t *>_ptr(Xp)
            self.d32.y = <const int64_t *>_ptr(data.y)
            self.d32.Y = <const float *>_ptr(data.Y)
            self.d32.sw = <const float *>_ptr(data.sw)
        else:
            self.st64.params = <double *>_ptr(state.params)
            self.st64.grads = <double *>_ptr(state.grads)
            self.st64.velocity = <double *>_ptr(state.velocity)
            self.st64.adam_m = <double *>_ptr(state.m)
            self.st64.adam_v = <double *>_ptr(state.v)
            self.d64.X = <const double *>_ptr(X)
            self.d64.X_csr.data = <const double *>_ptr(Xd)
            self.d64.X_csr.indices = <const int64_t *>_ptr(Xi)
            self.d64.X_csr.indptr = <const int64_t *>_ptr(Xp)
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


cdef class Group:
    """The epochs of several models, run back to back in one nogil call
    (``nn_group_serial``, ``csrc/nn_group.c``).

    ``epochs`` are :class:`Epoch` objects of one dtype (each model's plan, state, data and
    epoch); ``work`` is the calling thread's workspace, at least as large as the largest
    plan's, which every model uses in turn.
    """

    cdef nn_job_f32 *j32
    cdef nn_job_f64 *j64
    cdef Py_ssize_t n
    cdef bint single
    cdef object keep

    def __cinit__(self, epochs, work):
        cdef Epoch e
        cdef Py_ssize_t i
        cdef void *w = _ptr(work)
        self.n = len(epochs)
        self.single = work.dtype.itemsize == 4
        self.keep = (tuple(epochs), work)
        if self.single:
            self.j32 = <nn_job_f32 *>malloc(max(self.n, 1) * sizeof(nn_job_f32))
        else:
            self.j64 = <nn_job_f64 *>malloc(max(self.n, 1) * sizeof(nn_job_f64))
        if self.j32 == NULL and self.j64 == NULL:
            raise MemoryError("cannot allocate the group's job table")
        for i in range(self.n):
            e = epochs[i]
            if e.single != self.single:
                raise TypeError("Group: every model must have the workspace's dtype")
            if self.single:
                self.j32[i].plan = &e.plan.c
                self.j32[i].state = e.st32
                self.j32[i].data = e.d32
                self.j32[i].epoch = e.ep
                self.j32[i].work = <float *>w
            else:
                self.j64[i].plan = &e.plan.c
                self.j64[i].state = e.st64
                self.j64[i].data = e.d64
                self.j64[i].epoch = e.ep
                self.j64[i].work = <double *>w

    def __dealloc__(self):
        free(self.j32)
        free(self.j64)

    def run(self):
        """Every model's epoch; a list of ``(data_loss, penalty_loss, n_steps, status,
        seconds)``, one per model."""
        with nogil:
            if self.single:
                nn_group_serial_f32(self.j32, self.n)
            else:
                nn_group_serial_f64(self.j64, self.n)
        if self.single:
            return [(self.j32[i].result.data_loss, self.j32[i].result.penalty_loss,
                     self.j32[i].result.n_steps, self.j32[i].status, self.j32[i].seconds)
                    for i in range(self.n)]
        return [(self.j64[i].result.data_loss, self.j64[i].result.penalty_loss,
                 self.j64[i].result.n_steps, self.j64[i].status, self.j64[i].seconds)
                for i in range(self.n)]


# ---------------------------------------------------------------------------
# inference
# ---------------------------------------------------------------------------
cdef class Net:
    """A network for the compiled forward pass (``nn_forward``): its layers' weights
    (C-contiguous arrays of one dtype, kept referenced), activation codes and a workspace
    per thread of two blocks of at most ``block_rows`` rows of its widest hidden layer.

    ``workspace(n_threads, n_elements)`` makes the workspaces: a 2-D array of the dtype
    whose row ``t`` (at least ``n_elements`` long) is thread ``t``'s. The network keeps
    one, made anew when a call wants more threads than it has rows; a call made while
    another is in progress (from another Python thread) runs in workspaces of its own.
    """

    cdef nn_net c
    cdef const void **pointers
    cdef object keep
    cdef object work
    cdef void *work_ptr
    cdef Py_ssize_t work_rows, work_stride, work_size
    cdef object workspace
    cdef bint busy
    cdef bint single
    cdef readonly object dtype

    def __cinit__(self, coefs, intercepts, int activation, int output, workspace,
                  Py_ssize_t block_rows=128):
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
        self.workspace = workspace
        self.work_size = 2 * block_rows * widest
        self._keep_work(workspace(1, self.work_size))
        self.c.n_layers = L
        self.c.activation = activation
        self.c.output = output
        self.c.block_rows = block_rows
        self.c.sizes = <const int64_t *>_ptr(sizes)
        self.c.weights = self.pointers
        self.c.biases = self.pointers + L

    def __dealloc__(self):
        free(self.pointers)

    cdef _keep_work(self, work):
        self.work = work
        self.work_ptr = _ptr(work)
        self.work_rows = work.shape[0]
        self.work_stride = work.strides[0] // work.itemsize

    def run(self, X, out, bint apply_output, int n_threads=1):
        """``out`` <- the output layer's pre-activations (or activations) for rows X, their
        blocks split among up to ``n_threads`` threads (the result is the same on any
        number); returns an ``STATUS`` code (``nonfinite``: X holds NaN or infinity)."""
        cdef Py_ssize_t n = X.shape[0], stride = self.work_stride
        cdef void *x = _ptr(X)
        cdef void *o = _ptr(out)
        cdef void *w = self.work_ptr
        cdef int status = NN_STATUS_OK
        cdef bint own = not self.busy
        if n == 0 or o == NULL:
            return status
        n_threads = 1 if n_threads < 1 else min(n_threads, NN_MAX_CALL_THREADS)
        if not own or n_threads > self.work_rows:
            work = self.workspace(n_threads, self.work_size)
            if own:
                self._keep_work(work)
            w = _ptr(work)
            stride = work.strides[0] // work.itemsize
        self.busy = True
        with nogil:
            if self.single:
                status = nn_forward_f32(&self.c, <const float *>x, n, apply_output,
                                        <float *>o, <float *>w, stride, n_threads)
            else:
                status = nn_forward_f64(&self.c, <const double *>x, n, apply_output,
                                        <double *>o, <double *>w, stride, n_threads)
        if own:
            self.busy = False
        return status


include "_cython_kernels.pxi"

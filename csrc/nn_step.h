#ifndef NNOPT_NN_STEP_H_
#define NNOPT_NN_STEP_H_

/*
 * The compiled training step of the Cython backend: its plan, the arrays it works on,
 * its entry points (the serial epoch, and the workers of the threaded epochs), and the
 * single GEMM kernels built on the same code.
 *
 * The plan mirrors nnopt_fast.kernels.plan.EpochPlan, built once per training run;
 * arrays that travel together travel as one struct (the parameters and optimizer
 * state, the training data, the epoch's order and counters, the team). Layers are
 * numbered as in the math: 0 is the input, n_layers the output. Every float type has
 * its own instantiation of the code: _f32 and _f64.
 */

#include <stddef.h>
#include <stdint.h>

#include "nn_codes.h"
#include "nn_fused.h"
#include "nn_parallel.h"

/* BLAS's Fortran GEMMs, as scipy.linalg.cython_blas hands them over. */
typedef void nn_sgemm_fn(char *transa, char *transb, int *m, int *n, int *k, float *alpha,
                         float *a, int *lda, float *b, int *ldb, float *beta, float *c,
                         int *ldc);
typedef void nn_dgemm_fn(char *transa, char *transb, int *m, int *n, int *k, double *alpha,
                         double *a, int *lda, double *b, int *ldb, double *beta, double *c,
                         int *ldc);

/* The BLAS every GEMM of the step runs on; set once, when the extension loads. */
void nn_set_blas(nn_sgemm_fn *sgemm, nn_dgemm_fn *dgemm);

typedef struct nn_plan {
    int n_layers;
    int layout;                /* NN_LAYOUT_*: rows (BLAS) or features (small kernels) */
    int activation;            /* NN_ACT_* of the hidden layers */
    int output;                /* NN_OUT_* */
    int optimizer;             /* NN_OPT_* */
    int fused_sgd;             /* plain SGD: the L2 decay is folded into the weight GEMM */
    int l1_proximal;
    int l1_subgradient;
    ptrdiff_t batch_size;
    ptrdiff_t chunk_cols;      /* features layout: batch columns per chunk */
    ptrdiff_t ld;              /* features layout: row length of every block */
    const int64_t *sizes;          /* [n_layers + 1] layer widths */
    const int64_t *param_offsets;  /* [n_layers][2]: W_l, b_l (row l - 1) */
    const int64_t *work_offsets;   /* [n_layers + 1][4]: A_l, H_l, M_l, D_l; -1 absent */
    const uint64_t *layer_keys;    /* [n_layers + 1] dropout stream of layer l */
    const uint64_t *drop_threshold;
    const double *keep_inv;        /* 1 / keep of layer l */
    double l2, l1, penalty_div, momentum, beta1, beta2, adam_epsilon;
} nn_plan;

/* Offsets of W_l and b_l (l >= 1) in the parameters. */
static inline ptrdiff_t nn_W(const nn_plan *p, int l) { return (ptrdiff_t)p->param_offsets[2 * (l - 1)]; }
static inline ptrdiff_t nn_b(const nn_plan *p, int l) { return (ptrdiff_t)p->param_offsets[2 * (l - 1) + 1]; }
/* Offsets of layer l's blocks in the workspace: (batch_size, sizes[l]) row-major in the rows
 * layout, (sizes[l], ld) in the features layout. */
static inline ptrdiff_t nn_A(const nn_plan *p, int l) { return (ptrdiff_t)p->work_offsets[4 * l]; }
static inline ptrdiff_t nn_H(const nn_plan *p, int l) { return (ptrdiff_t)p->work_offsets[4 * l + 1]; }
static inline ptrdiff_t nn_M(const nn_plan *p, int l) { return (ptrdiff_t)p->work_offsets[4 * l + 2]; }
static inline ptrdiff_t nn_D(const nn_plan *p, int l) { return (ptrdiff_t)p->work_offsets[4 * l + 3]; }
/* Whether hidden layer l drops units (it then has a mask block). */
static inline int nn_has_dropout(const nn_plan *p, int l) { return p->work_offsets[4 * l + 2] >= 0; }

/* A network for inference: its layer sizes and activations, and where its weights are
 * (any memory: one buffer, or an array per layer). */
typedef struct {
    int n_layers;
    int activation;        /* NN_ACT_* of the hidden layers */
    int output;            /* NN_OUT_*: the output layer's activation */
    ptrdiff_t block_rows;  /* most rows per block: a thread's workspace holds 2 x block_rows
                            * x widest hidden layer */
    const int64_t *sizes;  /* [n_layers + 1] */
    const void *const *weights;  /* [n_layers]: W_l, (sizes[l-1], sizes[l]) row-major */
    const void *const *biases;   /* [n_layers]: b_l, (sizes[l],) */
} nn_net;

/* The epoch's sample order, learning rate and counters, and the stop flag it polls. */
typedef struct {
    const int64_t *perm;
    ptrdiff_t n_perm;
    double lr;
    int64_t step0;               /* global step of the first batch (keys the dropout masks) */
    int64_t t0;                  /* optimizer updates done before this epoch (Adam's t) */
    const volatile int32_t *stop; /* [2]: end after this batch; abort now */
} nn_epoch;

/* What an epoch adds up. */
typedef struct {
    double data_loss;     /* sum over batches of n_batch * weighted mean batch loss */
    double penalty_loss;  /* sum over batches of n_batch * penalty before the step */
    int64_t n_steps;
} nn_result;

/* Doubles per slot of a team's shared table: 128 bytes, one slot per thread. */
#define NN_SLOT 16

/* The shared state of one threaded epoch's team. */
typedef struct {
    nn_barrier barrier;
    int n_threads;
    volatile int status;   /* the first non-OK status any worker met */
    volatile int halt;     /* sync: thread 0's reading of stop[0], shared via the barrier */
    char pad[116];
    /* (n_threads + 1) slots: slot t for thread t, the last one for the epoch's sums */
    double *slots;
    /* Per-thread buffers of the features-layout sync epoch, rows of two arrays of the
     * model's type: thread t's workspace at thread_work + t work_stride, its gradient
     * sums at thread_grads + t grads_stride (strides in elements). */
    void *thread_work;
    ptrdiff_t work_stride;
    void *thread_grads;
    ptrdiff_t grads_stride;
} nn_team;

/* A team of n_threads with its slot table, 128-byte aligned; NULL if out of memory. */
nn_team *nn_team_create(int n_threads);
void nn_team_destroy(nn_team *team);
/* Ready for a new epoch: barrier, status and slots cleared. */
void nn_team_reset(nn_team *team);
/* The sums of a threaded epoch once its workers returned; returns its status. */
int nn_team_result(const nn_team *team, int hogwild, nn_result *res);

#define NN_DECLARE_STEP(T, S)                                                               \
    /* Parameters and optimizer state, laid out like the parameters; NULL when unused. */   \
    typedef struct {                                                                        \
        T *params;                                                                          \
        T *grads;                                                                           \
        T *velocity;                                                                        \
        T *adam_m;                                                                          \
        T *adam_v;                                                                          \
    } nn_state##S;                                                                          \
    /* The training set: rows of X (dense, or CSR when X is NULL), labels y (softmax) or    \
     * targets Y, weights sw or NULL. */                                                    \
    typedef struct {                                                                        \
        const T *X;                                                                         \
        nn_csr##S X_csr;                                                                    \
        const int64_t *y;                                                                   \
        const T *Y;                                                                         \
        const T *sw;                                                                        \
    } nn_data##S;                                                                           \
    /* One epoch on one thread; returns an NN_STATUS_*. */                                  \
    int nn_epoch_serial##S(const nn_plan *p, nn_state##S *st, const nn_data##S *data,       \
                           const nn_epoch *ep, T *work, nn_result *res);                    \
    /* Thread tid of a deterministic data-parallel epoch: every batch split into          \
     * n_threads row slices, then each thread steps its rows of every W. In the features    \
     * layout each slice runs in the thread's own workspace and gradient buffer (the       \
     * team's), and each thread sums the slices' gradients of its rows in slice order. */  \
    void nn_sync_worker##S(const nn_plan *p, nn_state##S *st, const nn_data##S *data,       \
                           const nn_epoch *ep, T *work, nn_team *team, int tid);            \
    /* Thread tid of a Hogwild epoch: batches tid, tid + n_threads, ... without locks,      \
     * in the thread's own workspace and gradient buffer. */                               \
    void nn_hogwild_worker##S(const nn_plan *p, nn_state##S *st, const nn_data##S *data,    \
                              const nn_epoch *ep, T *work, T *grads, nn_team *team,         \
                              int tid);                                                     \
    /* The forward pass of rows X (n_rows, sizes[0]) through net, block by block: out      \
     * (n_rows, sizes[L]) gets Z, or the output layer's activation of it if               \
     * apply_output. The blocks are shared among the calling thread and n_threads - 1     \
     * helpers (nn_share_items), thread t in workspace work + t work_stride of 2 x          \
     * block_rows x (widest hidden layer) elements; the result does not depend on         \
     * n_threads. Returns NN_STATUS_NONFINITE, having checked every row, if X holds NaN    \
     * or infinity. */                                                                     \
    int nn_forward##S(const nn_net *net, const T *X, ptrdiff_t n_rows, int apply_output,     \
                      T *out, T *work, ptrdiff_t work_stride, int n_threads);               \
    /* out = g(A W + b): A (n, k), W (k, c), b (c,), out (n, c), activation act. */        \
    void nn_dense_forward##S(const T *A, const T *W, const T *b, ptrdiff_t n, ptrdiff_t k,    \
                             ptrdiff_t c, int act, T *out);                                 \
    /* dW = scale A^T dZ, db = scale sum(dZ), and dA = dZ W^T unless dA is NULL. */          \
    void nn_dense_backward##S(const T *dZ, const T *A, const T *W, ptrdiff_t n, ptrdiff_t k,  \
                              ptrdiff_t c, T scale, T *dW, T *db, T *dA);                   \
    /* The loss of output layer `output` on Z + b (b may be NULL): see nn_softmax_xent. */  \
    double nn_output_loss##S(int output, T *dZ, const T *Z, const T *b,                      \
                             const int64_t *y, const T *Y, const int64_t *idx, const T *sw,  \
                             ptrdiff_t n_rows, ptrdiff_t n_cols);

NN_DECLARE_STEP(float, _f32)
NN_DECLARE_STEP(double, _f64)

#undef NN_DECLARE_STEP

#endif /* NNOPT_NN_STEP_H_ */

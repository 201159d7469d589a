#include "nn_step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_fused.h"
#include "nn_math.h"

static nn_sgemm_fn *nn_sgemm;
static nn_dgemm_fn *nn_dgemm;

void nn_set_blas(nn_sgemm_fn *sgemm, nn_dgemm_fn *dgemm)
{
    nn_sgemm = sgemm;
    nn_dgemm = dgemm;
}

/* Rows of one call of the forward and backward pass: idx[0 .. n_rows) are rows row0 ..
 * of the batch (rows of the workspace blocks, and of the dropout masks) at global step
 * `step`. */
typedef struct {
    const int64_t *idx;
    ptrdiff_t n_rows;
    int64_t row0;
    int64_t step;
} nn_rows;

/* The per-step scalars of a batch of weight S (reference.run_epoch, steps 3 and 6). */
typedef struct {
    double lr;
    double scale;  /* 1 / S */
    double d;      /* penalty_div if > 0, else S */
    double c2;     /* l2 / d */
    double c1;     /* l1 / (2 d) */
    double lr_t;   /* Adam's bias-corrected step size */
} nn_coeffs;

static inline nn_coeffs nn_step_coeffs(const nn_plan *p, double S, double lr, int64_t t)
{
    nn_coeffs c;
    c.lr = lr;
    c.scale = 1.0 / S;
    c.d = p->penalty_div > 0 ? p->penalty_div : S;
    c.c2 = p->l2 / c.d;
    c.c1 = p->l1 / (2.0 * c.d);
    c.lr_t = p->optimizer == NN_OPT_ADAM
                 ? lr * sqrt(1.0 - pow(p->beta2, (double)t)) / (1.0 - pow(p->beta1, (double)t))
                 : 0.0;
    return c;
}

/* (l2/2 sum W^2 + l1/2 sum |W|) / d; a zero strength adds exactly 0, even beside
 * non-finite weights. */
static inline double nn_penalty_value(const nn_plan *p, double s2, double s1, double d)
{
    return ((p->l2 != 0.0 ? 0.5 * p->l2 * s2 : 0.0) + (p->l1 != 0.0 ? 0.5 * p->l1 * s1 : 0.0)) / d;
}

/* reference.dropout_key(seed, l, step) from the layer's key mix(mix(seed) + (l+1) G). */
static inline uint64_t nn_step_key(uint64_t layer_key, int64_t step)
{
    return nn_mix64(layer_key + ((uint64_t)step + 1u) * NN_GOLDEN);
}

static inline ptrdiff_t nn_min(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }

/* Start of part s of n items cut into n_parts, on a multiple of grain items when every
 * part still gets at least one grain. */
static inline ptrdiff_t nn_cut(ptrdiff_t n, int s, int n_parts, ptrdiff_t grain)
{
    ptrdiff_t q = n * s / n_parts;
    if (s >= n_parts)
        return n;
    if (n >= grain * n_parts)
        q = q / grain * grain;
    return q;
}

/* Rows r0:r1 of slice s of an nb-row batch; 0 if the slice is empty. Cuts fall on
 * multiples of 16 rows when the batch allows it: slices of a row-major matrix of any
 * width then meet on a cache-line boundary (16 rows x 4 bytes = 64). */
static inline int nn_slice_rows(ptrdiff_t nb, int s, int n_slices, ptrdiff_t *r0, ptrdiff_t *r1)
{
    *r0 = nn_cut(nb, s, n_slices, 16);
    *r1 = nn_cut(nb, s + 1, n_slices, 16);
    return *r1 > *r0;
}

/* The widest hidden layer of a network (1 without hidden layers). */
static inline ptrdiff_t nn_forward_widest(const nn_net *net)
{
    ptrdiff_t widest = 1;
    for (int l = 1; l < net->n_layers; l++)
        widest = net->sizes[l] > widest ? (ptrdiff_t)net->sizes[l] : widest;
    return widest;
}

#define NN_FORWARD_BLOCK_GROUP 4

/* The row blocks of a forward call of n_rows rows: returns their number and sets *block
 * to their rows (the last block may be shorter). As few blocks of at most net->block_rows
 * rows as it takes, rounded up to a multiple of NN_FORWARD_BLOCK_GROUP when more than
 * one, all of one size: 2 or 4 threads taking them in turn then finish together, give or
 * take the last block's remainder. They depend on n_rows alone, never on the thread
 * count, so that each row's arithmetic does not either. */
static inline ptrdiff_t nn_forward_blocks(const nn_net *net, ptrdiff_t n_rows, ptrdiff_t *block)
{
    const ptrdiff_t most = net->block_rows > 0 ? net->block_rows : 1;
    ptrdiff_t n_blocks = (n_rows + most - 1) / most;
    if (n_blocks > 1)
        n_blocks = (n_blocks + NN_FORWARD_BLOCK_GROUP - 1) / NN_FORWARD_BLOCK_GROUP
                   * NN_FORWARD_BLOCK_GROUP;
    *block = n_blocks > 0 ? (n_rows + n_blocks - 1) / n_blocks : most;
    return *block > 0 ? (n_rows + *block - 1) / *block : 0;
}

/* The most threads a team may have (the features-layout sync epoch keeps a flag per
 * thread on its stack). */
#define NN_MAX_TEAM 1024

/* Team tables are cut on 128 bytes: two cache lines (x86 cores prefetch lines in pairs). */
#define NN_ALIGN_BYTES 128

/* Fewest rows of n_cols items spanning a multiple of 128 bytes. */
static inline ptrdiff_t nn_row_grain(ptrdiff_t n_cols, ptrdiff_t itemsize)
{
    ptrdiff_t a = n_cols * itemsize, b = NN_ALIGN_BYTES, t;
    while (b) {
        t = a % b;
        a = b;
        b = t;
    }
    return NN_ALIGN_BYTES / a;
}

/* The first non-OK status of a team wins (a later one would report the same void epoch). */
static inline void nn_set_status(nn_team *team, int status)
{
    if (!team->status)
        team->status = status;
}

nn_team *nn_team_create(int n_threads)
{
    if (n_threads < 1 || n_threads > NN_MAX_TEAM)
        return NULL;
    const size_t n_slots = (size_t)(n_threads + 1) * NN_SLOT;
    const size_t bytes = sizeof(nn_team) + n_slots * sizeof(double) + 2 * NN_ALIGN_BYTES;
    char *raw = malloc(bytes);
    if (!raw)
        return NULL;
    /* The team starts on a 128-byte boundary; the original pointer sits just before it. */
    uintptr_t at = ((uintptr_t)raw + sizeof(void *) + NN_ALIGN_BYTES - 1) & ~(uintptr_t)(NN_ALIGN_BYTES - 1);
    nn_team *team = (nn_team *)at;
    ((void **)team)[-1] = raw;
    memset(team, 0, sizeof(nn_team));
    team->n_threads = n_threads;
    at = ((uintptr_t)(team + 1) + NN_ALIGN_BYTES - 1) & ~(uintptr_t)(NN_ALIGN_BYTES - 1);
    team->slots = (double *)at;
    nn_team_reset(team);
    return team;
}

void nn_team_destroy(nn_team *team)
{
    if (team)
        free(((void **)team)[-1]);
}

void nn_team_reset(nn_team *team)
{
    nn_bar_init(&team->barrier, team->n_threads);
    team->status = NN_STATUS_OK;
    team->halt = 0;
    memset(team->slots, 0, (size_t)(team->n_threads + 1) * NN_SLOT * sizeof(double));
}

int nn_team_result(const nn_team *team, int hogwild, nn_result *res)
{
    const int T = team->n_threads;
    const double *sums = team->slots + NN_SLOT * T;
    res->data_loss = hogwild ? 0.0 : sums[0];
    res->penalty_loss = 0.0;
    res->n_steps = hogwild ? 0 : (int64_t)sums[2];
    for (int t = 0; t < T; t++) {
        const double *s = team->slots + NN_SLOT * t;
        res->penalty_loss += s[1];
        if (hogwild) {
            res->data_loss += s[2];
            res->n_steps += (int64_t)s[3];
        }
    }
    return team->status;
}

#define NN_T float
#define NN_S(name) name##_f32
#define NN_GEMM nn_sgemm
#include "nn_step_impl.h"
#include "nn_forward_impl.h"
#include "nn_workers_impl.h"
#undef NN_T
#undef NN_S
#undef NN_GEMM

#define NN_T double
#define NN_S(name) name##_f64
#define NN_GEMM nn_dgemm
#include "nn_step_impl.h"
#include "nn_forward_impl.h"
#include "nn_workers_impl.h"
#undef NN_T
#undef NN_S
#undef NN_GEMM

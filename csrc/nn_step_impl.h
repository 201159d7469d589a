/*
 * Type-generic body of the training step declared in nn_step.h, and of the single GEMM
 * kernels built on it (nn_forward_impl.h's forward pass of inference calls them too).
 *
 * Deliberately no include guard: nn_step.c includes this file once per real type, with
 * NN_T (the type), NN_S(name) (suffixes _f32 / _f64) and NN_GEMM (the BLAS GEMM of that
 * type) defined. One batch step serves the serial epoch and the Hogwild workers; the sync
 * workers (nn_workers_impl.h) run its two halves (forward + backward on their rows of the
 * batch, then the step of their rows of each W). The arithmetic is that of
 * nnopt_fast.kernels.reference.run_epoch, operation for operation, in the row-major
 * layout; the features layout (the small-matrix kernels) agrees to the parity tolerances.
 */

/* Row-major C = alpha op(A) op(B) + beta C (m x n), through column-major BLAS: a row-major
 * matrix is its transpose in column-major order, so C^T = op(B)^T op(A)^T is one GEMM
 * with the operands swapped. The dimensions fit an int (the dispatcher checks). */
static void NN_S(rgemm)(int ta, int tb, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, NN_T alpha,
                        const NN_T *A, ptrdiff_t lda, const NN_T *B, ptrdiff_t ldb, NN_T beta,
                        NN_T *C, ptrdiff_t ldc)
{
    char ca = tb ? 'T' : 'N', cb = ta ? 'T' : 'N';
    int im = (int)m, in = (int)n, ik = (int)k, ia = (int)lda, ib = (int)ldb, ic = (int)ldc;
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        /* BLAS would reject the zero leading dimensions; the product is empty. */
        for (ptrdiff_t i = 0; i < m * n; i++)
            C[i] = beta == (NN_T)0 ? (NN_T)0 : beta * C[i];
        return;
    }
    /* BLAS packs op(B) = B^T of a short inner dimension (the backward product D W^T of a
     * narrow layer) on its general path: 630 ns for W1's 32 x 10 . 10 x 32, 340 in
     * nn_small_gemm, which takes that and the other small products it runs faster. */
    if (NN_S(nn_small_gemm)(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc))
        return;
    NN_GEMM(&ca, &cb, &in, &im, &ik, &alpha, (NN_T *)B, &ib, (NN_T *)A, &ia, &beta, C, &ic);
}

double NN_S(nn_output_loss)(int output, NN_T *dZ, const NN_T *Z, const NN_T *b,
                            const int64_t *y, const NN_T *Y, const int64_t *idx, const NN_T *sw,
                            ptrdiff_t n_rows, ptrdiff_t n_cols)
{
    switch (output) {
    case NN_OUT_SOFTMAX:
        return NN_S(nn_softmax_xent)(dZ, Z, b, y, idx, sw, n_rows, n_cols);
    case NN_OUT_LOGISTIC:
        return NN_S(nn_logistic_xent)(dZ, Z, b, Y, idx, sw, n_rows, n_cols);
    case NN_OUT_EXP:
        return NN_S(nn_poisson_deviance)(dZ, Z, b, Y, idx, sw, n_rows, n_cols);
    default:
        return NN_S(nn_squared_error)(dZ, Z, b, Y, idx, sw, n_rows, n_cols);
    }
}

void NN_S(nn_dense_forward)(const NN_T *A, const NN_T *W, const NN_T *b, ptrdiff_t n,
                            ptrdiff_t k, ptrdiff_t c, int act, NN_T *out)
{
    if (n == 0 || c == 0)
        return;
    NN_S(rgemm)(0, 0, n, c, k, (NN_T)1, A, k, W, c, (NN_T)0, out, c);
    NN_S(nn_bias_act)(out, b, n, c, act);
}

void NN_S(nn_dense_backward)(const NN_T *dZ, const NN_T *A, const NN_T *W, ptrdiff_t n,
                             ptrdiff_t k, ptrdiff_t c, NN_T scale, NN_T *dW, NN_T *db, NN_T *dA)
{
    if (k && c)
        NN_S(rgemm)(1, 0, k, c, n, scale, A, k, dZ, c, (NN_T)0, dW, c);
    if (c)
        NN_S(nn_colsum)(db, dZ, n, c, scale);
    if (dA && n && k)
        NN_S(rgemm)(0, 1, n, k, c, (NN_T)1, dZ, c, W, c, (NN_T)0, dA, k);
}

/* Forward, loss gradient and backward deltas of rows->n_rows rows X[rows->idx]: rows
 * row0 .. of the batch, which key the dropout masks and are the rows of the workspace
 * blocks used (so concurrent slices of one batch write disjoint rows). Leaves A_{l-1}
 * and the unscaled, sample-weighted deltas D_l in the workspace for the weight
 * gradients. Returns 1, before the backward pass, if the loss is not finite. */
static int NN_S(forward_backward)(const nn_plan *p, const NN_T *P, const NN_S(nn_data) *data,
                                  const nn_rows *rows, NN_T *work, double *lsum)
{
    const int L = p->n_layers;
    const int64_t *sz = p->sizes;
    const ptrdiff_t nb = rows->n_rows, r0 = (ptrdiff_t)rows->row0;
    /* Sparse X: the first layer multiplies the batch's non-zeros, nothing is gathered. */
    if (data->X)
        NN_S(nn_gather_rows)(work + nn_A(p, 0) + r0 * sz[0], data->X, rows->idx, nb, sz[0]);
    for (int l = 1; l <= L; l++) {
        const ptrdiff_t n_in = sz[l - 1], n_out = sz[l];
        NN_T *H = work + nn_H(p, l) + r0 * n_out;
        if (l == 1 && !data->X)
            NN_S(nn_csr_gemm)(H, &data->X_csr, rows->idx, nb, P + nn_W(p, 1), n_out);
        else
            NN_S(rgemm)(0, 0, nb, n_out, n_in, (NN_T)1, work + nn_A(p, l - 1) + r0 * n_in,
                        n_in, P + nn_W(p, l), n_out, (NN_T)0, H, n_out);
        if (l == L)
            break;
        if (nn_has_dropout(p, l))
            NN_S(nn_bias_act_dropout)(H, work + nn_A(p, l) + r0 * n_out,
                                      work + nn_M(p, l) + r0 * n_out, P + nn_b(p, l), nb, n_out,
                                      p->activation, nn_step_key(p->layer_keys[l], rows->step),
                                      rows->row0, p->drop_threshold[l], (NN_T)p->keep_inv[l]);
        else
            NN_S(nn_bias_act)(H, P + nn_b(p, l), nb, n_out, p->activation);
    }
    /* The output bias is added inside the loss pass; dZ overwrites Z. */
    NN_T *D = work + nn_D(p, L) + r0 * sz[L];
    *lsum = NN_S(nn_output_loss)(p->output, D, D, P + nn_b(p, L), data->y, data->Y, rows->idx,
                                 data->sw, nb, sz[L]);
    if (!isfinite(*lsum))
        return 1;
    for (int l = L; l > 1; l--) {
        const ptrdiff_t n_in = sz[l - 1], n_out = sz[l];
        D = work + nn_D(p, l - 1) + r0 * n_in;
        NN_S(rgemm)(0, 1, nb, n_in, n_out, (NN_T)1, work + nn_D(p, l) + r0 * n_out, n_out,
                    P + nn_W(p, l), n_out, (NN_T)0, D, n_in);
        NN_S(nn_act_backward)(D, D, work + nn_H(p, l - 1) + r0 * n_in,
                              nn_has_dropout(p, l - 1) ? work + nn_M(p, l - 1) + r0 * n_in : NULL,
                              nb * n_in, p->activation);
    }
    return 0;
}

/* The features layout: forward and backward of one chunk of batch columns, rows->n_rows
 * of them (batch rows rows->row0 ..), through the small-matrix kernels; adds their
 * weight and bias gradients, unscaled, to the gradient buffer (or writes them, for the
 * first chunk). Returns 1 if the chunk's loss is not finite. */
static int NN_S(fm_chunk)(const nn_plan *p, const NN_S(nn_state) *st, const NN_S(nn_data) *data,
                          const nn_rows *rows, NN_T *work, int accumulate, double *lsum)
{
    const int L = p->n_layers;
    const int64_t *sz = p->sizes;
    const NN_T *P = st->params;
    const ptrdiff_t ld = p->ld, nc = rows->n_rows, vl = 64 / (ptrdiff_t)sizeof(NN_T);
    const ptrdiff_t npad = (nc + vl - 1) / vl * vl, k = sz[L];
    NN_S(nn_gather_cols)(work + nn_A(p, 0), ld, data->X, rows->idx, nc, npad, sz[0]);
    for (int l = 1; l <= L; l++) {
        NN_T *H = work + nn_H(p, l);
        NN_S(nn_fm_gemm)(P + nn_W(p, l), 1, sz[l], P + nn_b(p, l), work + nn_A(p, l - 1), ld,
                         sz[l - 1], sz[l], npad, H);
        if (l == L)
            break;
        NN_S(nn_activate)(H, sz[l] * ld, p->activation);
        if (nn_has_dropout(p, l))
            NN_S(nn_fm_dropout)(H, work + nn_A(p, l), work + nn_M(p, l), ld, sz[l], npad,
                                nn_step_key(p->layer_keys[l], rows->step), rows->row0,
                                p->drop_threshold[l], (NN_T)p->keep_inv[l]);
    }
    NN_T *D = work + nn_D(p, L);
    *lsum = NN_S(nn_fm_output_loss)(p->output, D, ld, k, nc, data->y, data->Y, rows->idx,
                                    data->sw);
    if (!isfinite(*lsum))
        return 1;
    for (ptrdiff_t j = 0; j < k; j++)
        for (ptrdiff_t c = nc; c < npad; c++)
            D[j * ld + c] = (NN_T)0;
    for (int l = L; l > 1; l--) {
        NN_T *Dp = work + nn_D(p, l - 1);
        NN_S(nn_fm_gemm)(P + nn_W(p, l), sz[l], 1, NULL, work + nn_D(p, l), ld, sz[l],
                         sz[l - 1], npad, Dp);
        NN_S(nn_act_backward)(Dp, Dp, work + nn_H(p, l - 1),
                              nn_has_dropout(p, l - 1) ? work + nn_M(p, l - 1) : NULL,
                              sz[l - 1] * ld, p->activation);
    }
    for (int l = 1; l <= L; l++) {
        NN_S(nn_fm_weight_grad)(work + nn_A(p, l - 1), work + nn_D(p, l), ld, sz[l - 1], sz[l],
                                npad, st->grads + nn_W(p, l), accumulate);
        NN_S(nn_row_sums)(work + nn_D(p, l), ld, sz[l], npad, st->grads + nn_b(p, l),
                          accumulate);
    }
    return 0;
}

/* The forward and backward pass of a batch, in the plan's layout: rows leaves A and D in
 * the workspace for update_rows' GEMMs; features runs the batch chunk by chunk and leaves
 * the unscaled gradient sums in st->grads. */
static int NN_S(gradients)(const nn_plan *p, const NN_S(nn_state) *st,
                           const NN_S(nn_data) *data, const nn_rows *rows, NN_T *work,
                           double *lsum)
{
    if (p->layout == NN_LAYOUT_ROWS)
        return NN_S(forward_backward)(p, st->params, data, rows, work, lsum);
    *lsum = 0.0;
    for (ptrdiff_t c0 = 0; c0 < rows->n_rows; c0 += p->chunk_cols) {
        const nn_rows chunk = {rows->idx + c0, nn_min(p->chunk_cols, rows->n_rows - c0),
                               rows->row0 + c0, rows->step};
        double ls;
        if (NN_S(fm_chunk)(p, st, data, &chunk, work, c0 > 0, &ls))
            return 1;
        *lsum += ls;
    }
    return 0;
}

/* One optimizer step on n parameters; the scalars are cast to the type as NumPy does. */
static void NN_S(optimizer_step)(int opt, const NN_S(nn_state) *st, ptrdiff_t off, ptrdiff_t n,
                                 const nn_plan *p, const nn_coeffs *c, double c2, double c1)
{
    NN_T *W = st->params + off;
    const NN_T *G = st->grads + off;
    switch (opt) {
    case NN_OPT_SGD:
        NN_S(nn_sgd_update)(W, G, n, (NN_T)c->lr, (NN_T)c2, (NN_T)c1);
        break;
    case NN_OPT_MOMENTUM:
        NN_S(nn_momentum_update)(W, G, st->velocity + off, n, (NN_T)c->lr, (NN_T)c2, (NN_T)c1,
                                 (NN_T)p->momentum);
        break;
    case NN_OPT_NESTEROV:
        NN_S(nn_nesterov_update)(W, G, st->velocity + off, n, (NN_T)c->lr, (NN_T)c2, (NN_T)c1,
                                 (NN_T)p->momentum);
        break;
    default:
        NN_S(nn_adam_update)(W, G, st->adam_m + off, st->adam_v + off, n, (NN_T)c2, (NN_T)c1,
                             (NN_T)p->beta1, (NN_T)(1.0 - p->beta1), (NN_T)p->beta2,
                             (NN_T)(1.0 - p->beta2), (NN_T)c->lr_t, (NN_T)p->adam_epsilon);
        break;
    }
}

/* Gradient and step of rows i0:i1 of W_l: dW_l[i0:i1] = scale A_{l-1}[:, i0:i1]^T D_l over
 * the whole batch (nb rows of the workspace), then the optimizer (plain SGD: folded into
 * the GEMM, W <- (1 - lr c2) W - lr scale A^T D) and the proximal L1 step. With s2 not
 * NULL, first adds sum W^2 and sum |W| of those rows (their share of the penalty). */
static void NN_S(update_rows)(const nn_plan *p, const NN_S(nn_state) *st, const NN_T *work,
                              const NN_S(nn_data) *data, const nn_rows *batch, int l,
                              ptrdiff_t i0, ptrdiff_t i1, const nn_coeffs *c, double *s2,
                              double *s1)
{
    const ptrdiff_t nb = batch->n_rows;
    const ptrdiff_t n_in = p->sizes[l - 1], n_out = p->sizes[l], m = i1 - i0;
    const ptrdiff_t off = nn_W(p, l) + i0 * n_out;
    const NN_T *A = work + nn_A(p, l - 1) + i0;
    const NN_T *D = work + nn_D(p, l);
    if (m <= 0)
        return;
    if (s2)
        NN_S(nn_penalty_sums)(st->params + off, m * n_out, s2, p->l1 != 0.0 ? s1 : NULL);
    if (p->layout == NN_LAYOUT_FEATURES) {
        /* The gradient sums are in G already: scale them, or fold them in as BLAS would. */
        NN_T *W = st->params + off, *G = st->grads + off;
        if (p->fused_sgd) {
            const NN_T alpha = (NN_T)(-c->lr * c->scale), beta = (NN_T)(1.0 - c->lr * c->c2);
            for (ptrdiff_t i = 0; i < m * n_out; i++)
                W[i] = alpha * G[i] + beta * W[i];
        } else {
            const NN_T scale = (NN_T)c->scale;
            for (ptrdiff_t i = 0; i < m * n_out; i++)
                G[i] = scale * G[i];
            NN_S(optimizer_step)(p->optimizer, st, off, m * n_out, p, c, c->c2,
                                 p->l1_subgradient ? c->c1 : 0.0);
        }
    } else if (l == 1 && !data->X) {
        /* Sparse X: the decay (or the zeroing) of these rows, then the non-zeros' terms. */
        NN_T *W = st->params + off, *G = st->grads + off;
        if (p->fused_sgd) {
            const NN_T beta = (NN_T)(1.0 - c->lr * c->c2);
            if (beta != (NN_T)1)
                for (ptrdiff_t i = 0; i < m * n_out; i++)
                    W[i] = beta * W[i];
            NN_S(nn_csr_scatter)(W, n_out, i0, i1, &data->X_csr, batch->idx, nb, D,
                                 (NN_T)(-c->lr * c->scale));
        } else {
            for (ptrdiff_t i = 0; i < m * n_out; i++)
                G[i] = (NN_T)0;
            NN_S(nn_csr_scatter)(G, n_out, i0, i1, &data->X_csr, batch->idx, nb, D,
                                 (NN_T)c->scale);
            NN_S(optimizer_step)(p->optimizer, st, off, m * n_out, p, c, c->c2,
                                 p->l1_subgradient ? c->c1 : 0.0);
        }
    } else if (p->fused_sgd) {
        NN_S(rgemm)(1, 0, m, n_out, nb, (NN_T)(-c->lr * c->scale), A, n_in, D, n_out,
                    (NN_T)(1.0 - c->lr * c->c2), st->params + off, n_out);
    } else {
        NN_S(rgemm)(1, 0, m, n_out, nb, (NN_T)c->scale, A, n_in, D, n_out, (NN_T)0,
                    st->grads + off, n_out);
        NN_S(optimizer_step)(p->optimizer, st, off, m * n_out, p, c, c->c2,
                             p->l1_subgradient ? c->c1 : 0.0);
    }
    if (p->l1_proximal && c->c1 != 0.0)
        NN_S(nn_l1_prox)(st->params + off, m * n_out, (NN_T)(c->lr * c->c1));
}

/* Gradient (column sums of D_l over the whole batch) and step of the bias b_l. */
static void NN_S(update_bias)(const nn_plan *p, const NN_S(nn_state) *st, const NN_T *work,
                              ptrdiff_t nb, int l, const nn_coeffs *c)
{
    const ptrdiff_t ob = nn_b(p, l), n_out = p->sizes[l];
    if (p->layout == NN_LAYOUT_FEATURES) {
        for (ptrdiff_t j = 0; j < n_out; j++)
            st->grads[ob + j] = (NN_T)c->scale * st->grads[ob + j];
    } else {
        NN_S(nn_colsum)(st->grads + ob, work + nn_D(p, l), nb, n_out, (NN_T)c->scale);
    }
    NN_S(optimizer_step)(p->fused_sgd ? NN_OPT_SGD : p->optimizer, st, ob, n_out, p, c, 0.0, 0.0);
}

/* Weight sum of a batch, in order; nb without sample weights. */
static double NN_S(batch_weight)(const NN_T *sw, const int64_t *idx, ptrdiff_t nb)
{
    double S = 0.0;
    if (!sw)
        return (double)nb;
    for (ptrdiff_t i = 0; i < nb; i++)
        S += (double)sw[idx[i]];
    return S;
}

/* Prefetch the next batch only while it fits comfortably in L2 next to the current one. */
#define NN_PREFETCH_MAX_BYTES 262144

/* Start loading the rows of a coming batch (shuffled rows miss the caches). */
static void NN_S(prefetch_batch)(const nn_plan *p, const NN_S(nn_data) *data, const int64_t *idx,
                                 ptrdiff_t nb)
{
    const size_t row_bytes = (size_t)p->sizes[0] * sizeof(NN_T);
    if ((size_t)nb * row_bytes > NN_PREFETCH_MAX_BYTES)
        return;
    /* Targets and weights first: they are few lines, and a full queue drops prefetches. */
    if (data->y)
        nn_prefetch_rows(data->y, sizeof(int64_t), idx, nb);
    if (data->Y)
        nn_prefetch_rows(data->Y, (size_t)p->sizes[p->n_layers] * sizeof(NN_T), idx, nb);
    if (data->sw)
        nn_prefetch_rows(data->sw, sizeof(NN_T), idx, nb);
    if (data->X)
        nn_prefetch_rows(data->X, row_bytes, idx, nb);
}

/* The training step of one batch of weight S: forward, backward, every update. Adds the
 * batch's data loss and penalty (before the step) to res. */
static int NN_S(batch_step)(const nn_plan *p, const NN_S(nn_state) *st,
                            const NN_S(nn_data) *data, const nn_rows *rows, NN_T *work,
                            double S, double lr, int64_t t, nn_result *res)
{
    const ptrdiff_t nb = rows->n_rows;
    const int want_penalty = p->l2 != 0.0 || p->l1 != 0.0;
    double lsum, s2 = 0.0, s1 = 0.0;
    if (NN_S(gradients)(p, st, data, rows, work, &lsum))
        return NN_STATUS_NONFINITE;
    const nn_coeffs c = nn_step_coeffs(p, S, lr, t);
    res->data_loss += (double)nb * (lsum / S);
    for (int l = 1; l <= p->n_layers; l++) {
        NN_S(update_rows)(p, st, work, data, rows, l, 0, p->sizes[l - 1], &c,
                          want_penalty ? &s2 : NULL,
                          &s1);
        NN_S(update_bias)(p, st, work, nb, l, &c);
    }
    if (want_penalty)
        res->penalty_loss += (double)nb * nn_penalty_value(p, s2, s1, c.d);
    return NN_STATUS_OK;
}

int NN_S(nn_epoch_serial)(const nn_plan *p, NN_S(nn_state) *st, const NN_S(nn_data) *data,
                          const nn_epoch *ep, NN_T *work, nn_result *res)
{
    ptrdiff_t start = 0;
    res->data_loss = res->penalty_loss = 0.0;
    res->n_steps = 0;
    while (start < ep->n_perm) {
        if (ep->stop[0] || ep->stop[1])
            return NN_STATUS_INTERRUPTED;
        const ptrdiff_t nb = nn_min(p->batch_size, ep->n_perm - start);
        const int64_t *idx = ep->perm + start;
        const double S = NN_S(batch_weight)(data->sw, idx, nb);
        if (S == 0.0)
            return NN_STATUS_ZERO_WEIGHT;
        if (start + nb < ep->n_perm)
            NN_S(prefetch_batch)(p, data, idx + nb, nn_min(p->batch_size, ep->n_perm - start - nb));
        const nn_rows rows = {idx, nb, 0, ep->step0 + res->n_steps};
        const int status = NN_S(batch_step)(p, st, data, &rows, work, S, ep->lr,
                                            ep->t0 + res->n_steps + 1, res);
        if (status != NN_STATUS_OK)
            return status;
        res->n_steps++;
        start += nb;
    }
    return NN_STATUS_OK;
}

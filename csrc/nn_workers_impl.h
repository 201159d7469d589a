/*
 * Type-generic bodies of the threaded epochs' workers (nn_step.h): the sync data-parallel
 * worker (row-major and features layouts) and the Hogwild worker.
 *
 * Deliberately no include guard: nn_step.c includes this file once per real type, after
 * nn_step_impl.h (whose batch step, halves and updates the workers call), with the same
 * macros defined.
 */

/* Gradient sums of parameters a .. b: the slices' buffers added in slice order (slices
 * without rows skipped) into the shared gradient buffer. */
static void NN_S(reduce_slices)(const nn_team *team, const NN_S(nn_state) *st, ptrdiff_t a,
                                ptrdiff_t b, const int *has_rows)
{
    const NN_T *base = (const NN_T *)team->thread_grads;
    int first = 1;
    for (int s = 0; s < team->n_threads; s++) {
        if (!has_rows[s])
            continue;
        const NN_T *g = base + s * team->grads_stride;
        if (first)
            for (ptrdiff_t j = a; j < b; j++)
                st->grads[j] = g[j];
        else
            for (ptrdiff_t j = a; j < b; j++)
                st->grads[j] += g[j];
        first = 0;
    }
    if (first)
        for (ptrdiff_t j = a; j < b; j++)
            st->grads[j] = (NN_T)0;
}

void NN_S(nn_sync_worker)(const nn_plan *p, NN_S(nn_state) *st, const NN_S(nn_data) *data,
                          const nn_epoch *ep, NN_T *work, nn_team *team, int tid)
{
    /* Per batch, two phases split by barriers. 1: slice s = tid of the batch (its rows
     * nb s / T .. nb (s+1) / T, cut on 16-row boundaries) runs forward and backward with
     * the dropout masks of the serial loop. 2: every thread sums the slice losses in slice
     * order (all agree on divergence); then chunk tid of the rows of each W (cut on
     * 128-byte boundaries) gets its gradient over the whole batch and its step; bias b_l
     * goes to thread l mod T. No thread writes another's rows, and the layout depends on
     * T alone: results are reproducible.
     *
     * Row-major layout: the slices run in their rows of the one batch workspace, and phase
     * 2's GEMM reduces them in batch order. Features layout: each slice runs in its
     * thread's own workspace and gradient buffer (team->thread_work, thread_grads), and
     * phase 2 adds the slices' gradients of its rows in slice order before stepping them. */
    const int T = team->n_threads;
    const int features = p->layout == NN_LAYOUT_FEATURES;
    const int want_penalty = p->l2 != 0.0 || p->l1 != 0.0;
    double *mine = team->slots + NN_SLOT * tid, *sums = team->slots + NN_SLOT * T;
    NN_S(nn_state) own = *st;
    if (features) {
        work = (NN_T *)team->thread_work + tid * team->work_stride;
        own.grads = (NN_T *)team->thread_grads + tid * team->grads_stride;
    }
    int has_rows[NN_MAX_TEAM];
    ptrdiff_t start = 0, r0, r1;
    int64_t k = 0;
    while (start < ep->n_perm) {
        const ptrdiff_t nb = nn_min(p->batch_size, ep->n_perm - start);
        const int64_t *idx = ep->perm + start;
        const double S = NN_S(batch_weight)(data->sw, idx, nb);
        double ls = 0.0, lsum = 0.0, s2 = 0.0, s1 = 0.0;
        if (S == 0.0) {
            /* Every thread sees the same sum and leaves here: none waits at a barrier. */
            if (tid == 0)
                team->status = NN_STATUS_ZERO_WEIGHT;
            break;
        }
        if (nn_slice_rows(nb, tid, T, &r0, &r1)) {
            const nn_rows rows = {idx + r0, r1 - r0, r0, ep->step0 + k};
            if (!features)
                NN_S(forward_backward)(p, st->params, data, &rows, work, &ls);
            else if (NN_S(gradients)(p, &own, data, &rows, work, &ls))
                ls = (double)NAN;
        }
        mine[0] = ls;
        if (nn_bar_wait(&team->barrier, ep->stop + 1))
            return;
        for (int s = 0; s < T; s++) {
            lsum += team->slots[NN_SLOT * s];
            has_rows[s] = nn_slice_rows(nb, s, T, &r0, &r1);
        }
        if (!isfinite(lsum)) {
            if (tid == 0)
                team->status = NN_STATUS_NONFINITE;
            break;
        }
        if (tid == 0)
            sums[0] += (double)nb * (lsum / S);
        /* This thread's rows of the next batch start loading while it updates. */
        if (start + nb < ep->n_perm) {
            const ptrdiff_t nb_next = nn_min(p->batch_size, ep->n_perm - start - nb);
            if (nn_slice_rows(nb_next, tid, T, &r0, &r1))
                NN_S(prefetch_batch)(p, data, idx + nb + r0, r1 - r0);
        }
        const nn_coeffs c = nn_step_coeffs(p, S, ep->lr, ep->t0 + k + 1);
        const nn_rows batch = {idx, nb, 0, ep->step0 + k};
        for (int l = 1; l <= p->n_layers; l++) {
            const ptrdiff_t n_in = p->sizes[l - 1], n_out = p->sizes[l];
            const ptrdiff_t grain = nn_row_grain(n_out, sizeof(NN_T));
            const ptrdiff_t i0 = nn_cut(n_in, tid, T, grain), i1 = nn_cut(n_in, tid + 1, T, grain);
            if (features)
                NN_S(reduce_slices)(team, st, nn_W(p, l) + i0 * n_out, nn_W(p, l) + i1 * n_out,
                                    has_rows);
            NN_S(update_rows)(p, st, work, data, &batch, l, i0, i1, &c,
                              want_penalty ? &s2 : NULL, &s1);
            if (l % T == tid) {
                if (features)
                    NN_S(reduce_slices)(team, st, nn_b(p, l), nn_b(p, l) + n_out, has_rows);
                NN_S(update_bias)(p, st, work, nb, l, &c);
            }
        }
        if (want_penalty)
            mine[1] += (double)nb * nn_penalty_value(p, s2, s1, c.d);
        if (tid == 0)
            team->halt = ep->stop[0];
        if (nn_bar_wait(&team->barrier, ep->stop + 1))
            return;
        k++;
        start += nb;
        if (team->halt) {
            if (tid == 0)
                team->status = NN_STATUS_INTERRUPTED;
            break;
        }
    }
    if (tid == 0)
        sums[2] = (double)k;
}

void NN_S(nn_hogwild_worker)(const nn_plan *p, NN_S(nn_state) *st, const NN_S(nn_data) *data,
                             const nn_epoch *ep, NN_T *work, NN_T *grads, nn_team *team, int tid)
{
    /* Full steps on the shared weights without locks; the dropout keys and Adam's update
     * number come from the global batch number, as in the serial loop: only the weights
     * each step sees differ (they race with the other threads). */
    const int T = team->n_threads;
    const ptrdiff_t B = p->batch_size;
    NN_S(nn_state) own = *st;
    nn_result acc = {0.0, 0.0, 0};
    double *mine = team->slots + NN_SLOT * tid;
    own.grads = grads;
    for (int64_t k = tid; k * B < ep->n_perm; k += T) {
        if (team->status || ep->stop[0] || ep->stop[1]) {
            if (ep->stop[0] || ep->stop[1])
                nn_set_status(team, NN_STATUS_INTERRUPTED);
            break;
        }
        const ptrdiff_t start = (ptrdiff_t)(k * B), nb = nn_min(B, ep->n_perm - start);
        const int64_t *idx = ep->perm + start;
        if (start + T * B < ep->n_perm)
            NN_S(prefetch_batch)(p, data, idx + T * B, nn_min(B, ep->n_perm - start - T * B));
        const double S = NN_S(batch_weight)(data->sw, idx, nb);
        if (S == 0.0) {
            nn_set_status(team, NN_STATUS_ZERO_WEIGHT);
            break;
        }
        const nn_rows rows = {idx, nb, 0, ep->step0 + k};
        const int status = NN_S(batch_step)(p, &own, data, &rows, work, S, ep->lr,
                                            ep->t0 + k + 1, &acc);
        if (status != NN_STATUS_OK) {
            nn_set_status(team, status);
            break;
        }
        acc.n_steps++;
    }
    mine[2] = acc.data_loss;
    mine[1] = acc.penalty_loss;
    mine[3] = (double)acc.n_steps;
}

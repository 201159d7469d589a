/*
 * Type-generic body of the compiled forward pass of inference (nn_step.h: nn_forward).
 *
 * Deliberately no include guard: nn_step.c includes this file once per real type, after
 * nn_step_impl.h (whose nn_dense_forward it runs), with the same macros defined.
 *
 * The rows run block by block (nn_forward_blocks): per block one GEMM and one fused bias +
 * activation pass per layer, then the output layer's activation, in a workspace of two
 * blocks of the widest hidden layer. A call on several threads (nn_share_items) gives
 * each thread a workspace of its own and whole blocks, whichever it takes; the blocks are
 * those of one thread, so every row's arithmetic, and the result, is the same to the bit.
 */

/* One forward call, for nn_share_items: block b in workspace work + slot work_stride. */
typedef struct {
    const nn_net *net;
    const NN_T *X;
    NN_T *out;
    NN_T *work;
    ptrdiff_t work_stride;
    ptrdiff_t n_rows, block, half;
    int apply_output;
} NN_S(nn_forward_call);

static int NN_S(forward_block)(void *arg, ptrdiff_t b, int slot)
{
    const NN_S(nn_forward_call) *call = arg;
    const nn_net *net = call->net;
    const int L = net->n_layers;
    const int64_t *sz = net->sizes;
    const ptrdiff_t r0 = b * call->block, nb = nn_min(call->block, call->n_rows - r0);
    NN_T *work = call->work + slot * call->work_stride;
    const NN_T *A = call->X + r0 * sz[0];
    NN_T *out = call->out + r0 * sz[L];
    const int status = NN_S(nn_all_finite)(A, nb * sz[0]) ? NN_STATUS_OK : NN_STATUS_NONFINITE;
    for (int l = 1; l <= L; l++) {
        NN_T *Z = l == L ? out : work + (l % 2) * call->half;
        NN_S(nn_dense_forward)(A, (const NN_T *)net->weights[l - 1],
                               (const NN_T *)net->biases[l - 1], nb, sz[l - 1], sz[l],
                               l == L ? NN_ACT_IDENTITY : net->activation, Z);
        A = Z;
    }
    if (call->apply_output)
        NN_S(nn_output_activation)(net->output, out, nb, sz[L]);
    return status;
}

int NN_S(nn_forward)(const nn_net *net, const NN_T *X, ptrdiff_t n_rows, int apply_output,
                     NN_T *out, NN_T *work, ptrdiff_t work_stride, int n_threads)
{
    NN_S(nn_forward_call) call;
    call.net = net;
    call.X = X;
    call.out = out;
    call.work = work;
    call.work_stride = work_stride;
    call.n_rows = n_rows;
    const ptrdiff_t n_blocks = nn_forward_blocks(net, n_rows, &call.block);
    call.half = nn_forward_widest(net) * call.block;
    call.apply_output = apply_output;
    return nn_share_items(NN_S(forward_block), &call, n_blocks, n_threads);
}

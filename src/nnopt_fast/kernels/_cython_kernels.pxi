# Included by _cython.pyx (its imports, fused types and helpers apply here).
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

"""NumPy reference kernels: the specification every compiled backend is tested against."""

import numpy as np

#: The kernels every backend exposes with these names, signatures and semantics.
KERNELS = (
    "dense_forward",
    "activation_backward",
    "dropout_mask",
    "softmax_cross_entropy",
    "logistic_cross_entropy",
    "squared_error",
    "output_loss",
    "dense_backward",
    "inplace_l2_grad",
    "inplace_l1_subgradient",
    "l2_decay_step",
    "l1_prox_step",
    "sgd_step",
    "momentum_step",
    "nesterov_step",
    "adam_step",
    "penalty",
    "dropout_threshold",
    "run_epoch",
)

__all__ = ["ACTIVATIONS", "OUTPUTS", "OPTIMIZERS", "KERNELS", *KERNELS]

#: Hidden activations, by name and by the integer code compiled backends use.
ACTIVATIONS = {"identity": 0, "tanh": 1, "relu": 2, "logistic": 3}
#: Output layers (activation + loss), by name and code.
OUTPUTS = {"softmax": 0, "logistic": 1, "identity": 2}
#: Optimizers, by name and code.
OPTIMIZERS = {"sgd": 0, "momentum": 1, "nesterov": 2, "adam": 3}

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
#: Dropout compares the top 24 bits of a 64-bit hash with keep * 2**24.
_DROPOUT_BITS = 24


# ---------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------
def _logistic(Z):
    # exp(-Z) overflows (harmlessly, to inf -> 0) for very negative Z.
    with np.errstate(over="ignore"):
        return Z.dtype.type(1.0) / (Z.dtype.type(1.0) + np.exp(-Z))


def _activate(Z, activation):
    if activation == "tanh":
        return np.tanh(Z)
    if activation == "relu":
        return np.maximum(Z, Z.dtype.type(0))
    if activation == "logistic":
        return _logistic(Z)
    if activation == "identity":
        return Z
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")


def _derivative(H, activation):
    one = H.dtype.type(1.0)
    if activation == "tanh":
        return one - H * H
    if activation == "relu":
        return (H > 0).astype(H.dtype)
    if activation == "logistic":
        return H * (one - H)
    if activation == "identity":
        return np.ones_like(H)
    raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")


def check_same_dtype(kernel, **arrays):
    """Raise TypeError unless every float array given (None skipped) has one dtype.

    The kernels compute in the dtype of their arrays and never cast silently: a float64
    ``W`` passed with float32 activations is a mistake, not a request for a conversion.
    Returns that dtype (None if no float array was given).
    """
    dt = None
    first = None
    for name, a in arrays.items():
        if a is None or not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            continue
        if dt is None:
            dt, first = a.dtype, name
        elif a.dtype != dt:
            raise TypeError(f"{kernel}: {name} is {a.dtype} but {first} is {dt}; "
                            "all float arrays must have one dtype (float32 or float64)")
    return dt


def dense_forward(A, W, b, activation, out):
    """Dense layer with fused bias and activation: ``out = g(A @ W + b)``.

    Parameters
    ----------
    A : ndarray of shape (n_samples, n_in), float32 or float64
        Input activations.
    W : ndarray of shape (n_in, n_out), same dtype
    b : ndarray of shape (n_out,), same dtype
    activation : {"tanh", "relu", "logistic", "identity"}
    out : ndarray of shape (n_samples, n_out), same dtype
        Written in place; also returned.

    Returns
    -------
    out : ndarray
    """
    check_same_dtype("dense_forward", out=out, A=A, W=W, b=b)
    Z = A @ W
    Z += b
    out[...] = _activate(Z, activation)
    return out


def activation_backward(H, dA, activation, out, M=None):
    """Backward through an activation, from its outputs: ``out = dA * g'(H) [* M]``.

    ``H = g(Z)`` is the activation's output before dropout; ``g'`` is computed from it
    (tanh: ``1 - H**2``, logistic: ``H (1 - H)``, relu: ``H > 0``, identity: 1).
    ``M``, when given, is the dropout mask applied in the forward pass (values 0 or
    ``1/keep``), so that the gradient flows only through the units that were kept.

    Parameters
    ----------
    H, dA : ndarray of shape (n_samples, n_units)
    activation : str
    out : ndarray of shape (n_samples, n_units)
        Written in place (may be ``dA`` itself); also returned.
    M : ndarray of shape (n_samples, n_units) or None
    """
    check_same_dtype("activation_backward", out=out, H=H, dA=dA, M=M)
    g = dA * _derivative(H, activation)
    if M is not None:
        g *= M
    out[...] = g
    return out


# ---------------------------------------------------------------------------
# counter-based dropout masks
# ---------------------------------------------------------------------------
def _mix64_int(z):
    """splitmix64's finalizer on a Python int, modulo 2**64."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _mix64_array(z):
    """splitmix64's finalizer on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def dropout_key(seed, layer, step):
    """The 64-bit stream key of one layer at one training step.

    ``k = mix(mix(mix(seed) + (layer+1) G) + (step+1) G)`` with ``G = 0x9E3779B97F4A7C15``
    and ``mix`` splitmix64's finalizer, all modulo 2**64.
    """
    k = _mix64_int(seed)
    k = _mix64_int(k + (layer + 1) * _GOLDEN)
    return _mix64_int(k + (step + 1) * _GOLDEN)


def dropout_threshold(keep):
    """Integer threshold on the top 24 hash bits: a unit is kept iff ``bits < int(keep * 2**24)``."""
    return int(keep * float(1 << _DROPOUT_BITS))


def dropout_mask(seed, layer, step, row0, keep, out):
    """Inverted-dropout mask from a counter-based generator.

    ``out[i, j] = 1/keep`` if unit ``(row0 + i, j)`` of ``layer`` is kept at ``step``, else 0.
    Element ``e = (row0 + i) * n_units + j`` is kept iff
    ``mix(k + (e+1) G) >> 40 < int(keep * 2**24)`` where ``k = dropout_key(seed, layer, step)``.
    The mask depends only on (seed, layer, step, element index), so any backend or
    thread layout that covers rows ``row0 .. row0 + n_samples`` reproduces it exactly.

    Parameters
    ----------
    seed : int in [0, 2**64)
    layer, step, row0 : int >= 0
    keep : float in (0, 1]
        Keep probability, ``1 - dropout``.
    out : ndarray of shape (n_samples, n_units), float32 or float64
        Written in place; also returned.
    """
    n_rows, n_cols = out.shape
    key = np.uint64(dropout_key(seed, layer, step))
    e = np.arange(row0 * n_cols + 1, (row0 + n_rows) * n_cols + 1, dtype=np.uint64)
    bits = _mix64_array(e * np.uint64(_GOLDEN) + key) >> np.uint64(64 - _DROPOUT_BITS)
    scale = out.dtype.type(1.0 / keep)
    kept = bits < np.uint64(dropout_threshold(keep))
    out[...] = np.where(kept, scale, out.dtype.type(0)).reshape(n_rows, n_cols)
    return out


# ---------------------------------------------------------------------------
# output layers and losses
# ---------------------------------------------------------------------------
def _clip_eps(dtype):
    return np.finfo(dtype).eps


def softmax_cross_entropy(Z, y, sw, out):
    """Softmax output with cross-entropy on integer labels.

    ``P = softmax(Z)`` row-wise (max-shifted); loss ``L_i = -log(clip(P[i, y_i], eps, 1 - eps))``
    with ``eps`` the dtype's machine epsilon (scikit-learn's clipping);
    gradient ``out = (P - onehot(y)) * sw[:, None]``, not yet divided by the batch weight.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_classes)
        Output pre-activations.
    y : ndarray of shape (n_samples,), integer in [0, n_classes)
    sw : ndarray of shape (n_samples,) or None
        Sample weights; None means all ones.
    out : ndarray of shape (n_samples, n_classes)
        Written with the loss gradient w.r.t. Z; may be ``Z`` itself.

    Returns
    -------
    loss : float
        ``sum_i sw_i * L_i`` (a weighted sum, not a mean), accumulated in float64.
    """
    check_same_dtype("softmax_cross_entropy", out=out, Z=Z, sw=sw)
    n = Z.shape[0]
    S = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(S)
    P = E / E.sum(axis=1, keepdims=True)
    eps = _clip_eps(Z.dtype)
    p_true = np.clip(P[np.arange(n), y], eps, 1 - eps)
    L = -np.log(p_true.astype(np.float64))
    P[np.arange(n), y] -= Z.dtype.type(1.0)
    if sw is not None:
        P *= sw[:, None]
        L = L * sw
    out[...] = P
    return float(L.sum())


def logistic_cross_entropy(Z, Y, sw, out):
    """Logistic outputs with binary cross-entropy, summed over outputs.

    ``P = 1 / (1 + exp(-Z))``, ``L_i = -sum_k [Y log p + (1 - Y) log(1 - p)]`` with ``p``
    clipped to ``[eps, 1 - eps]``; gradient ``out = (P - Y) * sw[:, None]``.

    Parameters
    ----------
    Z, Y : ndarray of shape (n_samples, n_outputs)
        ``Y`` holds 0/1 targets in the dtype of ``Z``.
    sw : ndarray of shape (n_samples,) or None
    out : ndarray of shape (n_samples, n_outputs)

    Returns
    -------
    loss : float
        ``sum_i sw_i * L_i``.
    """
    check_same_dtype("logistic_cross_entropy", out=out, Z=Z, Y=Y, sw=sw)
    P = _logistic(Z)
    eps = _clip_eps(Z.dtype)
    Pc = np.clip(P, eps, 1 - eps).astype(np.float64)
    Y64 = Y.astype(np.float64)
    L = -(Y64 * np.log(Pc) + (1.0 - Y64) * np.log1p(-Pc)).sum(axis=1)
    G = P - Y
    if sw is not None:
        G *= sw[:, None]
        L = L * sw
    out[...] = G
    return float(L.sum())


def squared_error(Z, Y, sw, out):
    """Identity output with squared error ``L_i = 1/2 ||z_i - y_i||^2``.

    Gradient ``out = (Z - Y) * sw[:, None]``.

    Parameters
    ----------
    Z, Y : ndarray of shape (n_samples, n_outputs)
    sw : ndarray of shape (n_samples,) or None
    out : ndarray of shape (n_samples, n_outputs)

    Returns
    -------
    loss : float
        ``sum_i sw_i * L_i``.
    """
    check_same_dtype("squared_error", out=out, Z=Z, Y=Y, sw=sw)
    G = Z - Y
    L = 0.5 * (G.astype(np.float64) ** 2).sum(axis=1)
    if sw is not None:
        G *= sw[:, None]
        L = L * sw
    out[...] = G
    return float(L.sum())


_OUTPUT_LOSS = {
    "softmax": softmax_cross_entropy,
    "logistic": logistic_cross_entropy,
    "identity": squared_error,
}


def output_loss(output, Z, T, sw, out):
    """Dispatch to the loss of ``output`` (softmax, logistic or identity)."""
    try:
        fn = _OUTPUT_LOSS[output]
    except KeyError:
        raise ValueError(f"output must be one of {sorted(OUTPUTS)}, got {output!r}") from None
    return fn(Z, T, sw, out)


def output_activation(output, Z):
    """Apply an output layer's activation to pre-activations ``Z`` (returns a new array)."""
    if output == "softmax":
        S = Z - Z.max(axis=1, keepdims=True)
        E = np.exp(S)
        return E / E.sum(axis=1, keepdims=True)
    if output == "logistic":
        return _logistic(Z)
    if output == "identity":
        return Z.copy()
    raise ValueError(f"output must be one of {sorted(OUTPUTS)}, got {output!r}")


# ---------------------------------------------------------------------------
# backward and updates
# ---------------------------------------------------------------------------
def dense_backward(dZ, A, W, scale, dW, db, dA=None):
    """Backward through a dense layer.

    ``dW = scale * A.T @ dZ``, ``db = scale * dZ.sum(0)``, and, when ``dA`` is given,
    ``dA = dZ @ W.T`` (the gradient flowing to the layer below; not scaled).

    Parameters
    ----------
    dZ : ndarray of shape (n_samples, n_out)
    A : ndarray of shape (n_samples, n_in)
    W : ndarray of shape (n_in, n_out)
    scale : float
        Usually ``1 / sum(sample weights of the batch)``.
    dW : ndarray of shape (n_in, n_out), written
    db : ndarray of shape (n_out,), written
    dA : ndarray of shape (n_samples, n_in) or None, written
    """
    check_same_dtype("dense_backward", dW=dW, dZ=dZ, A=A, W=W, db=db, dA=dA)
    s = dW.dtype.type(scale)
    np.matmul(A.T, dZ, out=dW)
    dW *= s
    db[...] = dZ.sum(axis=0) * s
    if dA is not None:
        np.matmul(dZ, W.T, out=dA)


def inplace_l2_grad(dW, W, c):
    """Coupled L2: ``dW += c * W`` in place (the gradient of ``c/2 ||W||^2``)."""
    check_same_dtype("inplace_l2_grad", dW=dW, W=W)
    dW += W.dtype.type(c) * W


def inplace_l1_subgradient(dW, W, c):
    """L1 subgradient: ``dW += c * sign(W)`` in place, with ``sign(0) = 0``."""
    check_same_dtype("inplace_l1_subgradient", dW=dW, W=W)
    dW += W.dtype.type(c) * np.sign(W)


def l2_decay_step(W, dW, lr, c):
    """Fused weight-decay SGD step, in place: ``W <- W - lr * (dW + c * W)``."""
    check_same_dtype("l2_decay_step", W=W, dW=dW)
    t = W.dtype.type
    W -= t(lr) * (dW + t(c) * W)


def l1_prox_step(W, threshold):
    """Proximal L1 step (soft threshold), in place: ``W <- sign(W) max(|W| - threshold, 0)``.

    With ``threshold = lr * l1 / (2 m)`` this gives exact zeros.
    """
    t = W.dtype.type
    np.multiply(np.sign(W), np.maximum(np.abs(W) - t(threshold), t(0)), out=W)


def sgd_step(W, g, lr):
    """Plain gradient step, in place: ``W <- W - lr * g``."""
    check_same_dtype("sgd_step", W=W, g=g)
    W -= W.dtype.type(lr) * g


def momentum_step(W, g, V, lr, mu):
    """Heavy-ball momentum, in place: ``V <- mu V - lr g``; ``W <- W + V``."""
    check_same_dtype("momentum_step", W=W, g=g, V=V)
    t = W.dtype.type
    V *= t(mu)
    V -= t(lr) * g
    W += V


def nesterov_step(W, g, V, lr, mu):
    """Nesterov momentum (scikit-learn's form), in place: ``V <- mu V - lr g``; ``W <- W + mu V - lr g``."""
    check_same_dtype("nesterov_step", W=W, g=g, V=V)
    t = W.dtype.type
    V *= t(mu)
    V -= t(lr) * g
    W += t(mu) * V - t(lr) * g


def adam_step(W, g, M, V, lr, beta1, beta2, eps, t):
    """Adam (scikit-learn's form), in place, for update number ``t >= 1``.

    ``M <- b1 M + (1 - b1) g``; ``V <- b2 V + (1 - b2) g^2``;
    ``W <- W - lr_t M / (sqrt(V) + eps)`` with ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``.
    """
    check_same_dtype("adam_step", W=W, g=g, M=M, V=V)
    ty = W.dtype.type
    M *= ty(beta1)
    M += ty(1.0 - beta1) * g
    V *= ty(beta2)
    V += ty(1.0 - beta2) * (g * g)
    lr_t = lr * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
    W -= ty(lr_t) * M / (np.sqrt(V) + ty(eps))


def penalty(coefs, l2, l1, div):
    """Penalty value ``(l2/2 sum ||W||^2 + l1/2 sum |W|) / div`` in float64 (biases excluded)."""
    s2 = 0.0
    s1 = 0.0
    for W in coefs:
        w = W.ravel()
        if l2:
            s2 += float(np.dot(w.astype(np.float64), w.astype(np.float64)))
        if l1:
            s1 += float(np.abs(w).sum(dtype=np.float64))
    return (0.5 * l2 * s2 + 0.5 * l1 * s1) / div


# ---------------------------------------------------------------------------
# one epoch: the reference training loop
# ---------------------------------------------------------------------------
def run_epoch(cfg, state, X, T, sw, perm, lr, step0):
    """One epoch of mini-batch training; the semantics every backend reproduces.

    For each batch ``k`` of ``cfg.batch_size`` consecutive entries of ``perm`` (the last
    may be shorter), at global step ``step = step0 + k``:

    1. forward: hidden layers ``H_l = g(A_{l-1} W_l + b_l)``; with dropout ``p_l > 0``,
       ``A_l = H_l * dropout_mask(cfg.seed, l, step, 0, 1 - p_l)``, else ``A_l = H_l``;
       output ``Z = A_{L-1} W_L + b_L``;
    2. loss gradient ``dZ`` of the output layer (weighted by ``sw``) and the batch weight
       ``S = sum(sw)`` (``n_batch`` without weights); if the batch loss is not finite, stop
       and return status 1 before any update of that batch;
    3. penalty coefficients ``c2 = l2 / d``, ``c1 = l1 / (2 d)`` with
       ``d = cfg.penalty_div`` if it is > 0, else ``d = S`` (scikit-learn's per-batch alpha);
    4. backward: ``dW_l = A_{l-1}^T dZ_l / S``, ``db_l = sum(dZ_l) / S``,
       ``dZ_{l-1} = (dZ_l W_l^T) * g'(H_{l-1}) * M_{l-1}``;
    5. gradient ``g = dW + c2 W (+ c1 sign(W) with the subgradient L1)``, biases unpenalized;
    6. optimizer step on every parameter (sgd, momentum, nesterov, or adam with update
       number ``t = state.t + k + 1``; the caller adds ``n_steps`` to ``state.t`` afterwards);
    7. proximal L1: ``W <- soft_threshold(W, lr * c1)`` on the weights.

    Parameters
    ----------
    cfg : nnopt_fast.train.TrainConfig
    state : nnopt_fast.train.TrainState
        Parameters (``state.coefs``, ``state.intercepts``: views into ``state.params``),
        optimizer buffers and counters; updated in place.
    X : ndarray of shape (n_samples, n_in), C-contiguous, model dtype
    T : ndarray
        Targets: int64 labels of shape (n_samples,) for softmax, else a
        (n_samples, n_outputs) array in the model dtype.
    sw : ndarray of shape (n_samples,) in the model dtype, or None
    perm : ndarray of shape (n_used,), int64
        The sample order of this epoch.
    lr : float
    step0 : int
        Global step number of the first batch (keys the dropout masks).

    Returns
    -------
    data_loss : float
        Sum over batches of ``n_batch * (weighted mean data loss of the batch)``.
    penalty_loss : float
        Sum over batches of ``n_batch * penalty(before the update)``.
    n_steps : int
        Batches completed.
    status : int
        0 if all went well, 1 if a batch loss was not finite.

    Raises
    ------
    ZeroDivisionError
        If the sample weights of a batch sum to 0 (its mean loss is undefined); the
        batches before it have been applied. Every backend raises it alike.
    """
    coefs, intercepts = state.coefs, state.intercepts
    n_layers = len(coefs)
    act, out = cfg.activation, cfg.output
    B = cfg.batch_size
    dt = X.dtype.type
    grads_W, grads_b = state.grad_coefs, state.grad_intercepts
    data_loss = 0.0
    pen_loss = 0.0
    n_steps = 0
    for k, start in enumerate(range(0, len(perm), B)):
        idx = perm[start : start + B]
        nb = len(idx)
        step = step0 + k
        A = [X[idx]]
        H = [None]
        M = [None]
        for l in range(1, n_layers):
            h = np.empty((nb, coefs[l - 1].shape[1]), dtype=X.dtype)
            dense_forward(A[-1], coefs[l - 1], intercepts[l - 1], act, h)
            p = cfg.dropout[l - 1]
            if p > 0.0:
                m = np.empty_like(h)
                dropout_mask(cfg.seed, l, step, 0, 1.0 - p, m)
                A.append(h * m)
                M.append(m)
            else:
                A.append(h)
                M.append(None)
            H.append(h)
        Z = np.empty((nb, coefs[-1].shape[1]), dtype=X.dtype)
        dense_forward(A[-1], coefs[-1], intercepts[-1], "identity", Z)
        swb = None if sw is None else sw[idx]
        S = float(nb) if swb is None else float(swb.sum(dtype=np.float64))
        if S == 0.0:
            raise ZeroDivisionError(f"batch {k} of the epoch has zero total sample weight")
        dZ = np.empty_like(Z)
        lsum = output_loss(out, Z, T[idx], swb, dZ)
        if not np.isfinite(lsum):
            return data_loss, pen_loss, n_steps, 1
        d = cfg.penalty_div if cfg.penalty_div > 0 else S
        c2 = cfg.l2 / d
        c1 = cfg.l1 / (2.0 * d)
        data_loss += nb * (lsum / S)
        if cfg.l2 or cfg.l1:
            pen_loss += nb * penalty(coefs, cfg.l2, cfg.l1, d)
        for l in range(n_layers, 0, -1):
            dA = None if l == 1 else np.empty_like(A[l - 1])
            dense_backward(dZ, A[l - 1], coefs[l - 1], 1.0 / S, grads_W[l - 1], grads_b[l - 1], dA)
            if l > 1:
                activation_backward(H[l - 1], dA, act, dA, M[l - 1])
                dZ = dA
        for W, gW in zip(coefs, grads_W):
            if c2:
                inplace_l2_grad(gW, W, c2)
            if c1 and cfg.l1_method == "subgradient":
                inplace_l1_subgradient(gW, W, c1)
        P, G = state.params, state.grads
        o = cfg.optimizer
        if o == "sgd":
            sgd_step(P, G, lr)
        elif o == "momentum":
            momentum_step(P, G, state.velocity, lr, cfg.momentum)
        elif o == "nesterov":
            nesterov_step(P, G, state.velocity, lr, cfg.momentum)
        else:
            adam_step(P, G, state.m, state.v, lr, cfg.beta1, cfg.beta2, cfg.epsilon, state.t + k + 1)
        if c1 and cfg.l1_method == "proximal":
            for W in coefs:
                l1_prox_step(W, lr * c1)
        n_steps += 1
    return data_loss, pen_loss, n_steps, 0


#: Name of this backend in the registry.
BACKEND_NAME = "numpy"


def backend_info():
    """Details reported by :func:`nnopt_fast.backends`."""
    return {"detail": "NumPy reference implementation (the specification)"}

"""The reference training epoch (the semantics every backend reproduces) and forward pass."""

import numpy as np

from ..codes import ACTIVATIONS, OUTPUTS, STATUS
from .activations import activation_backward, dense_forward, output_activation
from .dropout import dropout_mask
from .losses import output_loss
from .updates import (adam_step, dense_backward, inplace_l1_subgradient, inplace_l2_grad,
                      l1_prox_step, momentum_step, nesterov_step, penalty, sgd_step)

__all__ = ["penalty_coefficients", "run_epoch", "forward"]


def penalty_coefficients(l2, l1, penalty_div, S):
    """Per-step coefficients ``(d, c2, c1)``: ``c2 = l2 / d``, ``c1 = l1 / (2 d)``, with
    ``d = penalty_div`` if it is > 0, else the batch's weight sum ``S``."""
    d = penalty_div if penalty_div > 0 else S
    return d, l2 / d, l1 / (2.0 * d)


def run_epoch(cfg, plan, state, data, perm, lr, step0, stop):
    """One epoch of mini-batch training; the semantics every backend reproduces.

    For each batch ``k`` of ``cfg.batch_size`` consecutive entries of ``perm`` (the last
    may be shorter), at global step ``step = step0 + k``:

    1. forward: hidden layers ``H_l = g(A_{l-1} W_l + b_l)``; with dropout ``p_l > 0``,
       ``A_l = H_l * dropout_mask(cfg.seed, l, step, 0, 1 - p_l)``, else ``A_l = H_l``;
       output ``Z = A_{L-1} W_L + b_L``;
    2. loss gradient ``dZ`` of the output layer (weighted by ``sw``) and the batch weight
       ``S = sum(sw)`` (``n_batch`` without weights); if ``S`` is 0, stop and return status
       ``zero_weight``; if the batch loss is not finite, stop and return status
       ``nonfinite``, in both cases before any update of that batch;
    3. penalty coefficients ``c2 = l2 / d``, ``c1 = l1 / (2 d)`` with
       ``d = cfg.penalty_div`` if it is > 0, else ``d = S`` (scikit-learn's per-batch alpha);
    4. backward: ``dW_l = A_{l-1}^T dZ_l / S``, ``db_l = sum(dZ_l) / S``,
       ``dZ_{l-1} = (dZ_l W_l^T) * g'(H_{l-1}) * M_{l-1}``;
    5. gradient ``g = dW + c2 W (+ c1 sign(W) with the subgradient L1)``, biases unpenalized;
    6. optimizer step on every parameter (sgd, momentum, nesterov, or adam with update
       number ``t = state.t + k + 1``; the caller adds ``n_steps`` to ``state.t`` afterwards);
    7. proximal L1: ``W <- soft_threshold(W, lr * c1)`` on the weights.

    The compiled epochs also poll a stop flag after every batch and end the epoch there
    (status ``interrupted``); the NumPy loop is interrupted by Python itself.

    Parameters
    ----------
    cfg : nnopt_fast.train.TrainConfig
    state : nnopt_fast.train.TrainState
        Parameters (``state.coefs``, ``state.intercepts``: views into ``state.params``),
        optimizer buffers and counters; updated in place.
    X : ndarray of shape (n_samples, n_in), C-contiguous, model dtype, or a SciPy
        sparse matrix of that shape and dtype (the first layer then multiplies only its
        non-zeros)
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
    X, sw = getattr(data.X, "matrix", data.X), data.sw
    T = data.y if cfg.output == "softmax" else data.Y
    coefs, intercepts = state.coefs, state.intercepts
    n_layers = len(coefs)
    act = ACTIVATIONS[cfg.activation]
    out = OUTPUTS[cfg.output]
    identity = ACTIVATIONS["identity"]
    B = cfg.batch_size
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
        dense_forward(A[-1], coefs[-1], intercepts[-1], identity, Z)
        swb = None if sw is None else sw[idx]
        S = float(nb) if swb is None else float(swb.sum(dtype=np.float64))
        if S == 0.0:
            return data_loss, pen_loss, n_steps, STATUS["zero_weight"]
        dZ = np.empty_like(Z)
        lsum = output_loss(out, Z, T[idx], swb, dZ)
        if not np.isfinite(lsum):
            return data_loss, pen_loss, n_steps, STATUS["nonfinite"]
        d, c2, c1 = penalty_coefficients(cfg.l2, cfg.l1, cfg.penalty_div, S)
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
    return data_loss, pen_loss, n_steps, STATUS["ok"]


def forward(coefs, intercepts, act, X, out):
    """The network's output pre-activations: ``out = Z``, the inference forward pass.

    ``A_0 = X``, ``A_l = g(A_{l-1} W_l + b_l)`` for the hidden layers, and
    ``Z = A_{L-1} W_L + b_L`` (no output activation: see ``output_activation``).

    Parameters
    ----------
    coefs : list of ndarray, ``coefs[l]`` of shape (n_l, n_{l+1})
    intercepts : list of ndarray, ``intercepts[l]`` of shape (n_{l+1},)
    activation : {"tanh", "relu", "logistic", "identity"}
        The hidden layers' activation.
    X : ndarray of shape (n_samples, n_0)
    out : ndarray of shape (n_samples, n_L)
        Written in place; also returned.
    """
    A = X
    identity = ACTIVATIONS["identity"]
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        last = l == len(coefs) - 1
        Z = out if last else np.empty((A.shape[0], W.shape[1]), dtype=X.dtype)
        dense_forward(A, W, b, identity if last else act, Z)
        A = Z

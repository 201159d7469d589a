"""Reference backward pass of a dense layer, penalty gradients and optimizer steps."""

import numpy as np

__all__ = ["dense_backward", "inplace_l2_grad", "inplace_l1_subgradient", "l2_decay_step",
           "l1_prox_step", "sgd_step", "momentum_step", "nesterov_step", "adam_step",
           "adam_step_size", "penalty"]


def dense_backward(dZ, A, W, scale, dW, db, dA):
    """Backward through a dense layer.

    ``dW = scale * A.T @ dZ``, ``db = scale * dZ.sum(0)``, and, when ``dA`` is given,
    ``dA = dZ @ W.T`` (the gradient flowing to the layer below; not scaled).

    Parameters
    ----------
    dZ : ndarray of shape (n_samples, n_out)
    A : ndarray of shape (n_samples, n_in)
        (or, in an epoch on sparse X, the batch's rows as a SciPy sparse matrix)
    W : ndarray of shape (n_in, n_out)
    scale : float
        Usually ``1 / sum(sample weights of the batch)``.
    dW : ndarray of shape (n_in, n_out), written
    db : ndarray of shape (n_out,), written
    dA : ndarray of shape (n_samples, n_in) or None, written
    """
    s = dW.dtype.type(scale)
    if isinstance(A, np.ndarray):
        np.matmul(A.T, dZ, out=dW)
    else:  # a sparse batch of the input layer: the product of its non-zeros
        dW[...] = A.T @ dZ
    dW *= s
    db[...] = dZ.sum(axis=0) * s
    if dA is not None:
        np.matmul(dZ, W.T, out=dA)


def inplace_l2_grad(dW, W, c):
    """Coupled L2: ``dW += c * W`` in place (the gradient of ``c/2 ||W||^2``)."""
    dW += W.dtype.type(c) * W


def inplace_l1_subgradient(dW, W, c):
    """L1 subgradient: ``dW += c * sign(W)`` in place, with ``sign(0) = 0``."""
    dW += W.dtype.type(c) * np.sign(W)


def l2_decay_step(W, dW, lr, c):
    """Fused weight-decay SGD step, in place: ``W <- W - lr * (dW + c * W)``."""
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
    W -= W.dtype.type(lr) * g


def momentum_step(W, g, V, lr, mu):
    """Heavy-ball momentum, in place: ``V <- mu V - lr g``; ``W <- W + V``."""
    t = W.dtype.type
    V *= t(mu)
    V -= t(lr) * g
    W += V


def nesterov_step(W, g, V, lr, mu):
    """Nesterov momentum (scikit-learn's form), in place: ``V <- mu V - lr g``; ``W <- W + mu V - lr g``."""
    t = W.dtype.type
    V *= t(mu)
    V -= t(lr) * g
    W += t(mu) * V - t(lr) * g


def adam_step_size(lr, beta1, beta2, t):
    """Adam's bias-corrected step size ``lr sqrt(1 - b2^t) / (1 - b1^t)`` (float64)."""
    return lr * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)


def adam_step(W, g, M, V, lr, beta1, beta2, eps, t):
    """Adam (scikit-learn's form), in place, for update number ``t >= 1``.

    ``M <- b1 M + (1 - b1) g``; ``V <- b2 V + (1 - b2) g^2``;
    ``W <- W - lr_t M / (sqrt(V) + eps)`` with ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``.
    """
    ty = W.dtype.type
    M *= ty(beta1)
    M += ty(1.0 - beta1) * g
    V *= ty(beta2)
    V += ty(1.0 - beta2) * (g * g)
    W -= ty(adam_step_size(lr, beta1, beta2, t)) * M / (np.sqrt(V) + ty(eps))


def penalty(coefs, l2, l1, div):
    """Penalty value ``(l2/2 sum ||W||^2 + l1/2 sum |W|) / div`` in float64 (biases excluded)."""
    s2 = 0.0
    s1 = 0.0
    for W in coefs:
        w = W.ravel()
        if l2:
            w64 = w.astype(np.float64, copy=False)
            s2 += float(np.dot(w64, w64))
        if l1:
            s1 += float(np.abs(w).sum(dtype=np.float64))
    return (0.5 * l2 * s2 + 0.5 * l1 * s1) / div

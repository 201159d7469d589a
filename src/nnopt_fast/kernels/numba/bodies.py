"""The typed bodies of the Numba backend's single kernels (``kernels.dispatch`` checks their
arguments): C-contiguous arrays of one float dtype in, results written in place."""

import numpy as np

from ..epoch import EpochData
from ..hashing import dropout_key, dropout_threshold
from ..reference.updates import adam_step_size
from .rows import (backward_act, dense_backward, dense_forward, fill_mask, l2_decay, loss_rows,
                   network_forward, penalized_grad, penalty_sums, soft_threshold_all)
from .scalar import ADAM, MOMENTUM, NESTEROV, SGD, SOFTMAX
from .updates import StepScalars, TrainArrays, optimizer_range

__all__ = ["BODIES"]


def _flat(a):
    return a.reshape(-1)


def _empty(dtype, ndim=1):
    return np.zeros((0,) * ndim, dtype=dtype)


def _activation_backward(H, dA, act, out, M):
    n = out.size
    Hf = H.reshape(1, n)
    backward_act(dA.reshape(1, n), Hf, act, Hf if M is None else M.reshape(1, n),
                 M is not None, out.reshape(1, n))


def _dropout_mask(seed, layer, step, row0, keep, out):
    fill_mask(np.uint64(dropout_key(seed, layer, step)), np.uint64(dropout_threshold(keep)),
              out.dtype.type(1.0 / keep), row0, out)


def _output_loss(output, Z, T, sw, out):
    dt = Z.dtype
    labels = output == SOFTMAX
    data = EpochData(X=_empty(dt, 2), y=T if labels else _empty(np.int64),
                     Y=_empty(dt, 2) if labels else T, sw=_empty(dt) if sw is None else sw)
    rows = np.arange(Z.shape[0], dtype=np.int64)
    return loss_rows(output, Z, data, rows, dt.type(np.finfo(dt).eps), out)


def _dense_backward(dZ, A, W, scale, dW, db, dA):
    dt = dZ.dtype
    dense_backward(dZ, A, W, dt.type(scale), dW, db, _empty(dt, 2) if dA is None else dA,
                   dA is not None)


def _inplace_l2_grad(dW, W, c):
    t = W.dtype.type
    penalized_grad(_flat(dW), _flat(W), t(c), t(0.0), True, False)


def _inplace_l1_subgradient(dW, W, c):
    t = W.dtype.type
    penalized_grad(_flat(dW), _flat(W), t(0.0), t(c), False, True)


def _optimizer(opt, W, g, velocity=None, adam_m=None, adam_v=None, lr=0.0, mu=0.0,
               beta1=0.9, beta2=0.999, eps=1e-8, adam_lr=0.0):
    """One optimizer step on ``W`` with gradient ``g`` (kept), no penalty."""
    t = W.dtype.type
    k = StepScalars(t(0.0), t(0.0), t(0.0), t(lr), t(mu), t(beta1), t(1.0 - beta1), t(beta2),
                    t(1.0 - beta2), t(adam_lr), t(eps))
    empty = _empty(W.dtype)
    arrays = TrainArrays(*(empty if a is None else _flat(a)
                           for a in (W, g, velocity, adam_m, adam_v)))
    optimizer_range(opt, arrays, False, k)


def _adam_step(W, g, M, V, lr, beta1, beta2, eps, t):
    _optimizer(ADAM, W, g, adam_m=M, adam_v=V, beta1=beta1, beta2=beta2, eps=eps,
               adam_lr=float(adam_step_size(lr, beta1, beta2, t)))


def _penalty(coefs, l2, l1, div):
    s2 = s1 = 0.0
    for W in coefs:
        a2, a1 = penalty_sums(_flat(W))
        s2 += float(a2) if l2 else 0.0
        s1 += float(a1) if l1 else 0.0
    return (0.5 * l2 * s2 + 0.5 * l1 * s1) / div


def _readonly(a):
    """A read-only view of ``a``: one compiled version then serves read-only and writable
    inputs alike (the kernels never write their inputs)."""
    v = a.view()
    v.setflags(write=False)
    return v


def _forward(coefs, intercepts, act, X, out):
    network_forward(tuple(map(_readonly, coefs)), tuple(map(_readonly, intercepts)), act,
                    _readonly(X), out)


#: ``name -> body`` for :func:`nnopt_fast.kernels.dispatch.make_kernels`.
BODIES = {
    "dense_forward": dense_forward,
    "activation_backward": _activation_backward,
    "dropout_mask": _dropout_mask,
    "output_loss": _output_loss,
    "dense_backward": _dense_backward,
    "inplace_l2_grad": _inplace_l2_grad,
    "inplace_l1_subgradient": _inplace_l1_subgradient,
    "l2_decay_step": lambda W, dW, lr, c: l2_decay(_flat(W), _flat(dW), W.dtype.type(lr),
                                                   W.dtype.type(c)),
    "l1_prox_step": lambda W, thr: soft_threshold_all(_flat(W), W.dtype.type(thr)),
    "sgd_step": lambda W, g, lr: _optimizer(SGD, W, g, lr=lr),
    "momentum_step": lambda W, g, V, lr, mu: _optimizer(MOMENTUM, W, g, V, lr=lr, mu=mu),
    "nesterov_step": lambda W, g, V, lr, mu: _optimizer(NESTEROV, W, g, V, lr=lr, mu=mu),
    "adam_step": _adam_step,
    "penalty": _penalty,
    "forward": _forward,
}

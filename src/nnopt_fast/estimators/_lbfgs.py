"""The "lbfgs" solver: scipy's L-BFGS-B over the flat parameters, as scikit-learn runs it."""

import re
import warnings

import numpy as np
import scipy
import scipy.optimize
import scipy.sparse
from sklearn.exceptions import ConvergenceWarning

from ..kernels import reference as ref
from ..kernels.codes import ACTIVATIONS
from ..kernels.reference import activations as ref_layers
from ..kernels.reference import updates as ref_updates
from ._forward import data_loss
from ._threads import _thread_budget, fit_threads


def _sklearn_packing(net):
    """The blocks of ``net.params`` in scikit-learn's packed order (all W, then all b), as
    ``(start, stop)`` offsets: packing copies whole blocks, never element by element."""
    base = net.params.__array_interface__["data"][0]
    item = net.params.itemsize
    blocks = []
    for arrs in (net.coefs_, net.intercepts_):
        for a in arrs:
            start = (a.__array_interface__["data"][0] - base) // item
            blocks.append((start, start + a.size))
    return blocks


def _pack(flat, blocks):
    """float64 vector of ``flat``'s blocks in packed order."""
    return np.concatenate([flat[a:b] for a, b in blocks]).astype(np.float64, copy=False)


def _unpack(x, flat, blocks):
    """Write the packed vector ``x`` into ``flat``'s blocks (cast to its dtype)."""
    pos = 0
    for a, b in blocks:
        flat[a:b] = x[pos:pos + b - a]
        pos += b - a


def _verbosity_options(verbose):
    """scipy's ``iprint`` option, which scipy 1.15 deprecated (it prints nothing since)."""
    major, minor = (int(v) for v in re.match(r"(\d+)\.(\d+)", scipy.__version__).groups())
    return {"iprint": 1 if verbose else -1} if (major, minor) < (1, 15) else {}


def fit_lbfgs(est, net, X, T, sample_weight):
    """Minimize the estimator's full-batch loss over ``net``'s parameters in place.

    The loss and its gradient are evaluated with the reference kernels; the forward
    pass over the whole of X writes into buffers allocated once. A sparse (CSR) X is
    never densified: the first layer's products run on its non-zeros (the reference
    kernels' bodies, which the epochs on sparse X use as well).
    """
    est.backend_ = "numpy"
    n = X.shape[0]
    S = float(n) if sample_weight is None else float(sample_weight.sum(dtype=np.float64))
    L = len(net.coefs_)
    act, out = est.activation, est.out_activation_
    blocks = _sklearn_packing(net)
    params, coefs, intercepts = net.params, net.coefs_, net.intercepts_
    grads = np.zeros_like(params)
    gW, gb = net._views(grads)
    H = [X] + [np.empty((n, W.shape[1]), dtype=X.dtype) for W in coefs]
    dA = [None] + [np.empty((n, W.shape[1]), dtype=X.dtype) for W in coefs[:-1]]
    dZ = np.empty_like(H[-1])
    alpha, l1 = float(est.alpha), float(est.l1)
    sparse = scipy.sparse.issparse(X)

    def layer_forward(l):
        name = act if l < L - 1 else "identity"
        if l == 0 and sparse:
            ref_layers.dense_forward(X, coefs[0], intercepts[0], ACTIVATIONS[name], H[1])
        else:
            ref.dense_forward(H[l], coefs[l], intercepts[l], name, H[l + 1])

    def loss_grad(x):
        _unpack(x, params, blocks)
        for l in range(L):
            layer_forward(l)
        loss = (data_loss(out, H[L], T, sample_weight, est.n_outputs_, dZ)
                + ref.penalty(coefs, alpha, l1, S))
        delta = dZ
        for l in range(L, 0, -1):
            backward = ref_updates.dense_backward if l == 1 and sparse else ref.dense_backward
            backward(delta, H[l - 1], coefs[l - 1], 1.0 / S, gW[l - 1], gb[l - 1],
                     dA[l - 1] if l > 1 else None)
            if l > 1:
                ref.activation_backward(H[l - 1], dA[l - 1], act, dA[l - 1])
                delta = dA[l - 1]
        for W, g in zip(coefs, gW):
            if alpha:
                ref.inplace_l2_grad(g, W, alpha / S)
            if l1:
                ref.inplace_l1_subgradient(g, W, l1 / (2.0 * S))
        return loss, _pack(grads, blocks)

    options = {"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol,
               **_verbosity_options(est.verbose)}
    n_threads = fit_threads(est.n_threads)
    with _thread_budget(n_threads), np.errstate(over="ignore", invalid="ignore"):
        res = scipy.optimize.minimize(loss_grad, _pack(params, blocks),
                                      method="L-BFGS-B", jac=True, options=options)
    if res.status != 0:
        msg = res.message.decode() if isinstance(res.message, bytes) else res.message
        warnings.warn(f"lbfgs failed to converge after {res.nit} iteration(s) "
                      f"(status={res.status}): {msg}. Increase the number of iterations "
                      f"(max_iter) or scale the data.", ConvergenceWarning, stacklevel=5)
    est.n_iter_ = min(int(res.nit), est.max_iter)
    est.loss_ = float(res.fun)
    _unpack(res.x, params, blocks)

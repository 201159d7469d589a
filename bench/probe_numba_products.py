"""Can plain Numba loops replace BLAS for the narrow layers' products? A probe.

Run explicitly (never part of the test suite)::

    python bench/probe_numba_products.py

Times, in microseconds (minimum of 5 runs of 2,000 calls from compiled code, arrays
borrowed as in the epochs), the three products of a training step, ``A W`` (forward),
``A^T D`` (weight gradient) and ``D W^T`` (delta), on the shapes of W6, W1 and W7:

- ``dot``: ``np.dot`` (SciPy's BLAS, what the Numba backend calls);
- ``rows``: loops over the row-major blocks (inner loop over a layer's units);
- ``features``: loops over feature-major blocks (inner loop over the batch, the C
  backend's layout for narrow networks, without its register tiles);
- ``rows, constant widths``: the ``rows`` forward compiled for one layer shape, its
  widths constants of the function (what a Numba kernel specialized per shape gets).

Numba cannot declare two arrays free of aliasing, so LLVM keeps each loop's loads and
stores in order and the short inner loops stay scalar or load/store-bound.
"""

import time

import numpy as np
from numba import njit

from nnopt_fast.kernels._numba_config import FASTMATH
from nnopt_fast.kernels.numba.borrow import borrow

SHAPES = [(200, 24, 8), (200, 8, 2), (32, 64, 32), (32, 32, 10), (10000, 4, 32),
          (10000, 32, 16), (10000, 16, 4)]


@njit(fastmath=set(FASTMATH))
def rows_forward(A, W, out):
    n, k = A.shape
    m = W.shape[1]
    for i in range(n):
        for j in range(m):
            out[i, j] = 0
        for kk in range(k):
            a = A[i, kk]
            for j in range(m):
                out[i, j] += a * W[kk, j]


def rows_forward_for(k, m):
    """The row-major forward compiled for ``k`` inputs and ``m`` units (constants)."""
    @njit(fastmath=set(FASTMATH))
    def forward(A, W, out):
        for i in range(A.shape[0]):
            for j in range(m):
                out[i, j] = 0
            for kk in range(k):
                a = A[i, kk]
                for j in range(m):
                    out[i, j] += a * W[kk, j]
    return forward


@njit(fastmath=set(FASTMATH))
def rows_weight_grad(A, D, dW):
    n, k = A.shape
    m = D.shape[1]
    for kk in range(k):
        for j in range(m):
            dW[kk, j] = 0
    for i in range(n):
        for kk in range(k):
            a = A[i, kk]
            for j in range(m):
                dW[kk, j] += a * D[i, j]


@njit(fastmath=set(FASTMATH))
def rows_delta(D, W, dA):
    n, m = D.shape
    k = W.shape[0]
    for i in range(n):
        for kk in range(k):
            s = D.dtype.type(0.0)
            for j in range(m):
                s += D[i, j] * W[kk, j]
            dA[i, kk] = s


@njit(fastmath=set(FASTMATH))
def features_forward(AT, W, ZT):
    k, m = W.shape
    n = AT.shape[1]
    for j in range(m):
        for r in range(n):
            ZT[j, r] = 0
        for kk in range(k):
            w = W[kk, j]
            for r in range(n):
                ZT[j, r] += w * AT[kk, r]


@njit(fastmath=set(FASTMATH))
def features_weight_grad(AT, DT, dW):
    k, n = AT.shape
    m = DT.shape[0]
    for kk in range(k):
        for j in range(m):
            s = AT.dtype.type(0.0)
            for r in range(n):
                s += AT[kk, r] * DT[j, r]
            dW[kk, j] = s


@njit(fastmath=set(FASTMATH))
def features_delta(DT, W, dAT):
    k, m = W.shape
    n = DT.shape[1]
    for kk in range(k):
        for r in range(n):
            dAT[kk, r] = 0
        for j in range(m):
            w = W[kk, j]
            for r in range(n):
                dAT[kk, r] += w * DT[j, r]


@njit(fastmath=set(FASTMATH))
def dot_forward(A, W, out):
    np.dot(A, W, out)


@njit(fastmath=set(FASTMATH))
def dot_weight_grad(A, D, dW):
    np.dot(A.T, D, dW)


@njit(fastmath=set(FASTMATH))
def dot_delta(D, W, dA):
    np.dot(D, W.T, dA)


@njit
def _repeat(f, a, b, c, n):
    a, b, c = borrow(a), borrow(b), borrow(c)
    for _ in range(n):
        f(a, b, c)


def _us(f, *args):
    _repeat(f, *args, 10)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        _repeat(f, *args, 2000)
        best = min(best, (time.perf_counter() - t0) / 2000)
    return best * 1e6


def main():
    print("| dtype | n x k x m | product | dot | rows | features | rows, constant widths |")
    print("|---|---|---|---|---|---|---|")
    for dt in (np.float32, np.float64):
        for n, k, m in SHAPES:
            rng = np.random.default_rng(0)
            A = rng.standard_normal((n, k)).astype(dt)
            W = rng.standard_normal((k, m)).astype(dt)
            D = rng.standard_normal((n, m)).astype(dt)
            AT, DT = np.ascontiguousarray(A.T), np.ascontiguousarray(D.T)
            out, dW, dA = np.empty((n, m), dt), np.empty((k, m), dt), np.empty((n, k), dt)
            ZT, dAT = np.empty((m, n), dt), np.empty((k, n), dt)
            rows = {"A W": _us(dot_forward, A, W, out), "A^T D": _us(dot_weight_grad, A, D, dW),
                    "D W^T": _us(dot_delta, D, W, dA)}
            loops = {"A W": (_us(rows_forward, A, W, out), _us(features_forward, AT, W, ZT)),
                     "A^T D": (_us(rows_weight_grad, A, D, dW),
                               _us(features_weight_grad, AT, DT, dW)),
                     "D W^T": (_us(rows_delta, D, W, dA), _us(features_delta, DT, W, dAT))}
            const = {"A W": f"{_us(rows_forward_for(k, m), A, W, out):.2f}"}
            for name, t_dot in rows.items():
                r, f = loops[name]
                print(f"| {np.dtype(dt).name} | {n} x {k} x {m} | {name} | {t_dot:.2f} | "
                      f"{r:.2f} | {f:.2f} | {const.get(name, '')} |")


if __name__ == "__main__":
    main()

"""Inference: a network's forward pass in compiled code, for predict, predict_proba and loss."""

import numpy as np

from . import get_backend
from .codes import ACTIVATIONS, OUTPUTS, STATUS, code
from .epoch import is_sparse
from .reference import activate
from .reference import forward as reference_forward
from .reference import output_activation as reference_output_activation

__all__ = ["Network", "THREADED_BLAS_WORK", "SPLIT_WORK"]

#: Multiply-adds of one call (rows x weights) from which the compiled forward pass holds
#: BLAS to one thread (``train.threads.inference_budget``): about where OpenBLAS starts
#: to thread a GEMM (2^18); below, the call costs less than setting the thread count
#: would.
THREADED_BLAS_WORK = 1 << 18

#: Multiply-adds of one call (rows x weights) from which the compiled forward pass splits
#: its row blocks among threads (as many as ``inference_budget`` gives). A split costs
#: ~25-30 us (starting a thread, waking the idle core) and pays from ~100 us of work on
#: one thread. Measured 1 -> 2 threads on the 2-core machine of bench/ (one quiet run of
#: interleaved calls, relu + softmax): float64 64-100-10 0.97x at 1.4e6, 1.08x at 1.9e6,
#: 1.13x at 3.8e6, 1.37x at 7.6e6, 1.55x at 1.5e7 (digits' predict_proba: 1.3e7);
#: 20-64-64-1 0.95x at 2.1e6, 1.10x at 2.8e6; 64-32-10 1.03x at 9e5, 1.26x at 2.4e6;
#: 8-16-2 0.81x at 1.6e5; 784-256-10 1.58-1.84x from its first split (129 rows, 2.6e7);
#: float32 64-100-10 1.01x at 3.8e6, 1.33x at 7.6e6, 20-64-64-1 0.97x at 2.8e6, 1.16x at
#: 5.6e6. Below, one thread.
SPLIT_WORK = 1 << 22


class Network:
    """The forward pass of one network, compiled once and run on any number of rows.

    The compiled backend runs the rows block by block with the GIL released: one GEMM
    and one fused bias + activation pass per layer, then the output layer's activation,
    in a workspace of two blocks of the widest hidden layer. The blocks are as few as it
    takes to hold at most 128 rows each (a multiple of 4 of them when more than one), of
    one size, and depend on the number of rows alone. Calls of :data:`THREADED_BLAS_WORK`
    multiply-adds and more hold BLAS to the calling thread; calls of :data:`SPLIT_WORK`
    and more share their blocks among the calling thread and helper threads started for
    the call, as many as ``n_threads`` and the thread budget allow
    (``train.threads.inference_budget``): each thread takes the next block not yet taken
    and runs it in a workspace of its own, and the call returns once every block is done
    (it never waits for a helper that has not started: a busy core leaves its blocks to
    the others). Every row is computed as on one thread, to the bit. Nothing is
    allocated per call but the output (and the workspaces of a call made while another
    is in progress). Without a compiled backend, the NumPy reference computes the same.

    Parameters
    ----------
    coefs, intercepts : list of ndarray
        ``coefs[l]`` of shape (n_l, n_{l+1}) and ``intercepts[l]`` of shape (n_{l+1},),
        C-contiguous, one float dtype; referenced, not copied (the network sees later
        in-place changes of the weights).
    activation : {"tanh", "relu", "logistic", "identity"}
    output : {"softmax", "logistic", "identity", "exp"}
    backend : {"auto", "cython", "numba", "numpy"}
    """

    def __init__(self, coefs, intercepts, activation, output, backend="auto"):
        self.coefs, self.intercepts = list(coefs), list(intercepts)
        self.activation, self.output = activation, output
        self.dtype = self.coefs[0].dtype
        self.n_out = self.coefs[-1].shape[1]
        self._backend = backend
        self._tail = None
        self._n_weights = sum(W.size for W in self.coefs)
        be = get_backend(backend)
        compile_network = getattr(be, "compile_network", None)
        self._net = None if compile_network is None else compile_network(
            self.coefs, self.intercepts, code(ACTIVATIONS, activation, "activation"),
            code(OUTPUTS, output, "output"))

    def __call__(self, X, apply_output=True, n_threads=None):
        """The output layer's activations (or pre-activations) for rows ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_in), C-contiguous, the network's dtype, or a
            SciPy sparse matrix of that shape (its first layer is SciPy's sparse product,
            never densified; the other layers run compiled)
        apply_output : bool
            False: the pre-activations ``Z``; True: the output layer's activation of them
            (softmax probabilities, logistic sigmoids, identity values).
        n_threads : int >= 1, -1 or None
            The most threads a large call runs on, as an estimator's ``n_threads`` (None:
            its default rule); the result is the same on any number.

        Returns
        -------
        ndarray of shape (n_samples, n_out), the network's dtype (a new array)

        Raises
        ------
        ValueError
            If X holds NaN or infinity.
        """
        if is_sparse(X):
            return self._sparse(X, apply_output, n_threads)
        out = np.empty((X.shape[0], self.n_out), dtype=self.dtype)
        if self._net is not None:
            work = X.shape[0] * self._n_weights
            if work < THREADED_BLAS_WORK:
                status = self._net.run(X, out, apply_output)
            else:
                # Imported here: train's modules import this one.
                from ..train.threads import inference_budget

                with inference_budget(n_threads if work >= SPLIT_WORK else 1) as n:
                    status = self._net.run(X, out, apply_output, n)
            if status == STATUS["nonfinite"]:
                raise ValueError("X contains NaN or infinity")
            return out
        if X.size and not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity")
        reference_forward(self.coefs, self.intercepts, self.activation, X, out)
        return reference_output_activation(self.output, out) if apply_output else out

    def _sparse(self, X, apply_output, n_threads):
        data = X.data if hasattr(X, "data") else X.tocsr().data
        if data.size and not np.isfinite(data).all():
            raise ValueError("X contains NaN or infinity")
        Z = np.asarray(X @ self.coefs[0], dtype=self.dtype)
        Z += self.intercepts[0]
        if len(self.coefs) == 1:
            return reference_output_activation(self.output, Z) if apply_output else Z
        A = np.ascontiguousarray(activate(Z, self.activation), dtype=self.dtype)
        if self._tail is None:
            self._tail = Network(self.coefs[1:], self.intercepts[1:], self.activation,
                                 self.output, self._backend)
        return self._tail(A, apply_output, n_threads)

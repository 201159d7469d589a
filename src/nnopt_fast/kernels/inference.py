"""Inference: a network's forward pass in compiled code, for predict, predict_proba and loss."""

import numpy as np

from . import get_backend
from .codes import ACTIVATIONS, OUTPUTS, STATUS, code
from .epoch import is_sparse
from .reference import activate
from .reference import forward as reference_forward
from .reference import output_activation as reference_output_activation

__all__ = ["Network", "THREADED_BLAS_WORK"]

#: Multiply-adds of one call (rows x the widest layer's weights) from which the compiled
#: forward pass holds BLAS to one thread (``train.threads.single_thread_blas``): about
#: where OpenBLAS starts to thread a GEMM (2^18); below, the call costs less than
#: setting the thread count would.
THREADED_BLAS_WORK = 1 << 18


class Network:
    """The forward pass of one network, compiled once and run on any number of rows.

    The compiled backend runs the rows block by block (256 at a time) with the GIL
    released: one GEMM and one fused bias + activation pass per layer, then the output
    layer's activation, in a workspace of two blocks of the widest hidden layer, with
    BLAS on the calling thread alone for calls of :data:`THREADED_BLAS_WORK` and more.
    Nothing is allocated per call but the output. Without a compiled backend, the NumPy
    reference computes the same.

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
        self._widest = max(W.size for W in self.coefs)
        be = get_backend(backend)
        compile_network = getattr(be, "compile_network", None)
        self._net = None if compile_network is None else compile_network(
            self.coefs, self.intercepts, code(ACTIVATIONS, activation, "activation"),
            code(OUTPUTS, output, "output"))

    def __call__(self, X, apply_output=True):
        """The output layer's activations (or pre-activations) for rows ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_in), C-contiguous, the network's dtype, or a
            SciPy sparse matrix of that shape (its first layer is SciPy's sparse product,
            never densified; the other layers run compiled)
        apply_output : bool
            False: the pre-activations ``Z``; True: the output layer's activation of them
            (softmax probabilities, logistic sigmoids, identity values).

        Returns
        -------
        ndarray of shape (n_samples, n_out), the network's dtype (a new array)

        Raises
        ------
        ValueError
            If X holds NaN or infinity.
        """
        if is_sparse(X):
            return self._sparse(X, apply_output)
        out = np.empty((X.shape[0], self.n_out), dtype=self.dtype)
        if self._net is not None:
            if X.shape[0] * self._widest < THREADED_BLAS_WORK:
                status = self._net.run(X, out, apply_output)
            else:
                # Imported here: train's modules import this one.
                from ..train.threads import single_thread_blas

                with single_thread_blas():
                    status = self._net.run(X, out, apply_output)
            if status == STATUS["nonfinite"]:
                raise ValueError("X contains NaN or infinity")
            return out
        if X.size and not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinity")
        reference_forward(self.coefs, self.intercepts, self.activation, X, out)
        return reference_output_activation(self.output, out) if apply_output else out

    def _sparse(self, X, apply_output):
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
        return self._tail(A, apply_output)

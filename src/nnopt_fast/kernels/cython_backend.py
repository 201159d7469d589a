"""Cython + C backend: the reference's kernels, and a whole epoch in one compiled call."""

import os

import numpy as np

from .codes import OUTPUTS
from .dispatch import make_kernels
from .epoch import make_run_epoch
from .hashing import MASK64, dropout_threshold
from .plan import LAYOUTS, use_small_kernels
from .reference import DOCS, KERNELS
from .reference.updates import adam_step_size
from .team import run_team

try:
    from . import _cython
except ImportError as exc:  # pragma: no cover - depends on how the package was built
    raise ImportError(
        "the compiled extension nnopt_fast.kernels._cython is not built (the package was "
        "installed with NNOPT_NO_EXTENSION=1, or its build failed); reinstall with a C "
        f"compiler, Cython and NumPy available ({exc})"
    ) from exc

__all__ = ["BACKEND_NAME", "backend_info", *KERNELS]

#: Name of this backend in the registry.
BACKEND_NAME = "cython"

#: Workspace buffers start on 64-byte boundaries (one AVX-512 vector); per-thread
#: buffers on 128 (two cache lines: x86 cores prefetch lines in adjacent pairs).
_ALIGN_BYTES = 64
_THREAD_ALIGN_BYTES = 128


def backend_info():
    """Details reported by :func:`nnopt_fast.backends`.

    Returns
    -------
    dict
        ``simd``: the ``target_clones`` variant this CPU runs ("avx512f", "avx2" or
        "default"); ``blas``: where the GEMMs come from; ``blas_library``: that BLAS's
        name, version and threads (None if unknown); ``threads``; ``detail``.
    """
    simd = _cython.simd_path()
    return {
        "simd": simd,
        "blas": "scipy.linalg.cython_blas (sgemm/dgemm of SciPy's bundled BLAS)",
        "blas_library": _scipy_blas(),
        "threads": "threaded epochs on threads of their own (nnopt_fast.kernels.team)",
        "detail": f"Cython + C fused kernels, {simd} code path, whole epoch in one nogil call",
    }


def _scipy_blas():
    """Name, version and thread count of the BLAS that SciPy loaded, as threadpoolctl sees it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for lib in threadpool_info():
        # Wheels bundle SciPy's own BLAS in scipy.libs (NumPy's lives in numpy.libs).
        folder = os.path.basename(os.path.dirname(lib.get("filepath", "")))
        if lib.get("user_api") == "blas" and folder.startswith("scipy"):
            return {k: lib.get(k) for k in ("internal_api", "version", "num_threads",
                                            "threading_layer", "architecture")}
    return None


# ---------------------------------------------------------------------------
# typed bodies of the single kernels (kernels.dispatch validates their arguments)
# ---------------------------------------------------------------------------
def _flat(a):
    return a.reshape(-1)


def _activation_backward(H, dA, act, out, M):
    _cython.act_backward(_flat(H), _flat(dA), act, _flat(out), None if M is None else _flat(M))


def _dropout_mask(seed, layer, step, row0, keep, out):
    key = _cython.dropout_key(seed & MASK64, layer, step)
    _cython.dropout_mask(key, row0, dropout_threshold(keep), 1.0 / keep, out)


def _inplace_l2_grad(dW, W, c):
    if c == 0:
        # The compiled pass skips a zero coefficient; keep 0 * W's NaN for infinite W.
        dW += W.dtype.type(0) * W
        return
    _cython.add_penalty_grad(_flat(dW), _flat(W), c, 0.0)


def _inplace_l1_subgradient(dW, W, c):
    if c == 0:
        dW += W.dtype.type(0) * np.sign(W)
        return
    _cython.add_penalty_grad(_flat(dW), _flat(W), 0.0, c)


def _penalty(coefs, l2, l1, div):
    s2 = s1 = 0.0
    for W in coefs:
        a2, a1 = _cython.penalty_sums(_flat(W))
        s2 += a2 if l2 else 0.0
        s1 += a1 if l1 else 0.0
    return (0.5 * l2 * s2 + 0.5 * l1 * s1) / div


def compile_network(coefs, intercepts, activation, output):
    """The compiled forward pass of a network (weights C-contiguous, of one dtype; codes
    of :mod:`nnopt_fast.kernels.codes`); ``.run(X, out, apply_output, n_threads=1)``.
    Its threads' workspaces are rows of one array, each on its own cache lines."""
    dtype = coefs[0].dtype
    return _cython.Net(coefs, intercepts, activation, output,
                       lambda n, size: _aligned_zeros((n, size), dtype, _THREAD_ALIGN_BYTES))


def _forward(coefs, intercepts, act, X, out):
    compile_network(coefs, intercepts, act, OUTPUTS["identity"]).run(X, out, False)


_BODIES = {
    "dense_forward": _cython.dense_forward,
    "activation_backward": _activation_backward,
    "dropout_mask": _dropout_mask,
    "output_loss": _cython.output_loss,
    "dense_backward": _cython.dense_backward,
    "inplace_l2_grad": _inplace_l2_grad,
    "inplace_l1_subgradient": _inplace_l1_subgradient,
    "l2_decay_step": lambda W, dW, lr, c: _cython.l2_decay_step(_flat(W), _flat(dW), lr, c),
    "l1_prox_step": lambda W, thr: _cython.l1_prox(_flat(W), thr),
    "sgd_step": lambda W, g, lr: _cython.sgd_step(_flat(W), _flat(g), lr),
    "momentum_step": lambda W, g, V, lr, mu: _cython.momentum_step(
        _flat(W), _flat(g), _flat(V), lr, mu, False),
    "nesterov_step": lambda W, g, V, lr, mu: _cython.momentum_step(
        _flat(W), _flat(g), _flat(V), lr, mu, True),
    "adam_step": lambda W, g, M, V, lr, b1, b2, eps, t: _cython.adam_step(
        _flat(W), _flat(g), _flat(M), _flat(V), float(adam_step_size(lr, b1, b2, t)), b1, b2,
        eps),
    "penalty": _penalty,
    "forward": _forward,
}
globals().update(make_kernels(_BODIES, DOCS))


# ---------------------------------------------------------------------------
# the epoch
# ---------------------------------------------------------------------------
def _aligned_zeros(shape, dtype, align):
    """Zeros of ``shape`` whose rows each start on an ``align``-byte boundary."""
    dt = np.dtype(dtype)
    per = align // dt.itemsize
    n_rows, n_cols = shape
    stride = -(-max(int(n_cols), 1) // per) * per
    raw = np.zeros(n_rows * stride + per, dtype=dt)
    shift = ((-raw.ctypes.data) % align) // dt.itemsize
    return raw[shift:shift + n_rows * stride].reshape(n_rows, stride)


class _Workspace:
    """The buffers of one training run on this backend, made on its first epoch.

    ``work``: the batch workspace of the plan (the serial epoch's, which the sync threads
    share, each its own rows); per thread count, a team and, for Hogwild, a workspace and
    a gradient buffer per thread.
    """

    def __init__(self, plan, dtype):
        self.plan = plan
        self.cplan = _cython.CPlan(plan)
        self.dtype = np.dtype(dtype)
        self.work = _aligned_zeros((1, plan.work_size), dtype, _ALIGN_BYTES)[0]
        self._teams = {}
        self._hogwild = {}

    def team(self, n_threads):
        if n_threads not in self._teams:
            self._teams[n_threads] = _cython.Team(n_threads)
        team = self._teams[n_threads]
        team.reset()
        return team

    def hogwild_buffers(self, n_threads, n_params):
        """A workspace and a gradient buffer per thread (rows of two arrays)."""
        if n_threads not in self._hogwild:
            self._hogwild[n_threads] = (
                _aligned_zeros((n_threads, self.plan.work_size), self.dtype, _THREAD_ALIGN_BYTES),
                _aligned_zeros((n_threads, n_params), self.dtype, _THREAD_ALIGN_BYTES))
        return self._hogwild[n_threads]


def _workspace(plan, state):
    ws = state.workspace.get("cython")
    if ws is None or ws.plan is not plan:
        ws = state.workspace["cython"] = _Workspace(plan, state.params.dtype)
    return ws


def serial_epoch(cfg, plan, state, data, perm, lr, step0, stop):
    """The one-thread epoch (``kernels.epoch.make_run_epoch``'s ``serial``)."""
    ws = _workspace(plan, state)
    return _cython.Epoch(ws.cplan, state, data, perm, lr, step0, stop).serial(ws.work)


def parallel_epoch(cfg, plan, state, data, perm, lr, step0, stop):
    """The sync data-parallel or Hogwild epoch on ``cfg.n_threads`` threads
    (``make_run_epoch``'s ``parallel``). BLAS must be single-threaded meanwhile
    (``nnopt_fast.train.threads`` arranges it)."""
    ws = _workspace(plan, state)
    n = int(cfg.n_threads)
    hogwild = cfg.parallel == "hogwild"
    team = ws.team(n)
    epoch = _cython.Epoch(ws.cplan, state, data, perm, lr, step0, stop)
    if hogwild:
        bufs, grads = ws.hogwild_buffers(n, state.params.size)
        run_team(lambda tid: epoch.hogwild_worker(team, bufs[tid, :plan.work_size],
                                                  grads[tid, :state.params.size], tid),
                 n, stop)
    else:
        if plan.layout == LAYOUTS["features"]:
            # Each slice in a workspace and a gradient buffer of its own thread.
            team.set_buffers(*ws.hogwild_buffers(n, state.params.size))
        run_team(lambda tid: epoch.sync_worker(team, ws.work, tid), n, stop)
    return team.result(hogwild)


def layout(cfg, sparse=False):
    """The workspace layout of a configuration: the small-matrix kernels' ``features``
    for narrow networks (:func:`nnopt_fast.kernels.plan.use_small_kernels`) on dense X,
    else ``rows`` (a sparse X's first layer runs on its non-zeros, row by row)."""
    small = use_small_kernels(cfg.layer_sizes, cfg.batch_size)
    return "features" if small and not sparse else "rows"


run_epoch = make_run_epoch(serial_epoch, parallel_epoch, layout)
run_epoch.__doc__ = """One epoch of mini-batch training, in compiled code with the GIL released.

    Same semantics, parameters and return value as
    :func:`nnopt_fast.kernels.reference.run_epoch`. The C step (``csrc/nn_step.c``) runs
    every batch; its buffers live in ``state.workspace["cython"]``, made on the first
    epoch of a run: no Python call and no allocation per batch. Plain SGD (without
    subgradient L1) updates each weight matrix with one GEMM,
    ``W <- (1 - lr c2) W - (lr / S) A^T dZ``. With ``cfg.n_threads > 1`` the epoch runs
    on that many threads: sync (each batch split by rows, deterministic) or Hogwild.
    """

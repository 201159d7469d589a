"""The epoch plan: everything a compiled epoch needs to know besides the arrays it trains on."""

from typing import NamedTuple

import numpy as np

from .codes import ACTIVATIONS, OPTIMIZERS, OUTPUTS, code
from .hashing import GOLDEN, dropout_threshold, mix64_int

__all__ = ["EpochPlan", "build_plan", "plan_for", "WORK_ALIGN_BYTES", "LAYOUTS",
           "SMALL_KERNEL_RULE", "use_small_kernels"]

#: Every block of the workspace starts on a 64-byte boundary (one AVX-512 vector).
WORK_ALIGN_BYTES = 64

#: Workspace layouts: ``rows``, a (batch, units) block per layer for BLAS's GEMMs;
#: ``features``, a (units, columns) block per layer for the small-matrix kernels, which
#: run along the batch and so fill whole vectors whatever a layer's width.
LAYOUTS = {"rows": 0, "features": 1}

#: When the small-matrix kernels train a network instead of BLAS (measured on the bench
#: machine, docs/architecture.md "Narrow layers"): every layer has at most
#: ``max_weights`` weights (n_in x n_out) and a batch has at least ``min_batch`` rows;
#: the feature-major workspace then holds a chunk of at most ``chunk_bytes`` bytes of
#: batch columns, the batch running through it chunk by chunk. Serial epoch time,
#: features / rows layout (float32, dropout 0.2, one thread): 24-8-2 0.86 at batch 32,
#: 0.73 at 64; 4-32-16-4 1.01 at 32, 0.83 at 64, 0.44 at 10,000; 64-32-10 1.79 at 32,
#: 1.11 at 128; 100-40-10 1.39 at 64; 20-64-64-2 1.40 at 64.
SMALL_KERNEL_RULE = {"max_weights": 1024, "min_batch": 32, "chunk_bytes": 1 << 18}


def use_small_kernels(layer_sizes, batch_size):
    """Whether a network of ``layer_sizes`` trained by batches of ``batch_size`` rows runs
    the small-matrix kernels (see :data:`SMALL_KERNEL_RULE`)."""
    rule = SMALL_KERNEL_RULE
    widest = max(a * b for a, b in zip(layer_sizes[:-1], layer_sizes[1:]))
    return batch_size >= rule["min_batch"] and widest <= rule["max_weights"]


class EpochPlan(NamedTuple):
    """Layer sizes, memory layout and per-step settings of one training run.

    Built once per training run by :func:`build_plan` and read by every backend: the
    Cython backend copies it into a C struct once, the Numba backend passes it as it is
    (a namedtuple of scalars and arrays). Layers are numbered as in the math: layer 0 is
    the input, ``n_layers`` the output.

    Parameters are one flat buffer laid out ``W_1, b_1, ..., W_L, b_L`` (each C-ordered),
    see :meth:`W` and :meth:`b`. The workspace is one flat buffer of the model dtype and
    ``work_size`` entries holding, for a batch of up to ``batch_size`` rows, per layer l:
    ``A_l`` (the input of layer l + 1: the gathered batch at l = 0, the activations after
    dropout above), ``H_l`` (activations before dropout), ``M_l`` (the dropout mask) and
    ``D_l`` (the delta, d loss / d Z_l, unscaled and sample-weighted), each a
    ``(batch_size, sizes[l])`` row-major block in the ``rows`` layout, a
    ``(sizes[l], ld)`` block of ``chunk_cols`` batch columns in the ``features`` layout;
    see :meth:`A` .. :meth:`D`. Without dropout ``A_l`` is ``H_l`` and ``M_l`` is absent
    (-1); at the output, ``D_L`` is ``H_L`` (the loss gradient overwrites Z).
    """

    n_layers: int
    #: :data:`LAYOUTS` code of the workspace.
    layout: int
    activation: int
    output: int
    optimizer: int
    batch_size: int
    #: (n_layers + 1,) int64: layer widths.
    sizes: np.ndarray
    #: (n_layers, 2) int64: offsets of ``W_l`` and ``b_l`` (row l - 1) in the parameters.
    param_offsets: np.ndarray
    #: (n_layers + 1, 4) int64: offsets of ``A_l, H_l, M_l, D_l`` in the workspace, -1 absent.
    work_offsets: np.ndarray
    work_size: int
    #: features layout: batch columns per chunk, and the row length of every block (a
    #: multiple of 64 bytes).
    chunk_cols: int
    ld: int
    #: (n_layers + 1,) uint64: ``mix(mix(seed) + (l + 1) G)``, the dropout stream of layer l.
    layer_keys: np.ndarray
    #: (n_layers + 1,) uint64: dropout keeps a unit iff its 24 hash bits are below this.
    drop_threshold: np.ndarray
    #: (n_layers + 1,) float64: ``1 / keep`` of layer l (1 without dropout).
    keep_inv: np.ndarray
    l2: float
    l1: float
    #: The ``d`` of the per-step penalty coefficients (0: the batch's weight sum).
    penalty_div: float
    momentum: float
    beta1: float
    beta2: float
    adam_epsilon: float
    #: Plain SGD without subgradient L1: the decay is folded into the weight GEMM.
    fused_sgd: bool
    l1_proximal: bool
    l1_subgradient: bool
    #: The losses clip probabilities to ``[clip_eps, 1 - clip_eps]`` (the dtype's epsilon;
    #: cast it to the model dtype before use).
    clip_eps: float

    def W(self, l):
        """Offset of ``W_l`` (layer l >= 1) in the parameters."""
        return int(self.param_offsets[l - 1, 0])

    def b(self, l):
        """Offset of ``b_l`` (layer l >= 1) in the parameters."""
        return int(self.param_offsets[l - 1, 1])

    def A(self, l):
        """Offset of ``A_l`` in the workspace."""
        return int(self.work_offsets[l, 0])

    def H(self, l):
        """Offset of ``H_l`` in the workspace (layers 1 .. n_layers)."""
        return int(self.work_offsets[l, 1])

    def M(self, l):
        """Offset of the dropout mask ``M_l`` in the workspace, -1 without dropout."""
        return int(self.work_offsets[l, 2])

    def D(self, l):
        """Offset of the delta ``D_l`` in the workspace (layers 1 .. n_layers)."""
        return int(self.work_offsets[l, 3])


def _param_offsets(sizes):
    offs = np.zeros((len(sizes) - 1, 2), dtype=np.int64)
    pos = 0
    for l in range(len(sizes) - 1):
        offs[l, 0] = pos
        pos += sizes[l] * sizes[l + 1]
        offs[l, 1] = pos
        pos += sizes[l + 1]
    return offs


def _blocks_per_column(cfg):
    """Workspace entries per batch row (the A, H, M, D blocks of every layer)."""
    sizes = cfg.layer_sizes
    n = sizes[0] + sizes[-1]
    for l in range(1, len(sizes) - 1):
        n += sizes[l] * (4 if cfg.dropout and cfg.dropout[l - 1] > 0 else 2)
    return n


def build_plan(cfg, dtype, layout="rows"):
    """The :class:`EpochPlan` of training configuration ``cfg`` in ``dtype``.

    Parameters
    ----------
    cfg : nnopt_fast.train.TrainConfig
    dtype : float32 or float64
        The model's dtype (the workspace is laid out in it).
    layout : {"rows", "features"}
        The workspace layout (see :data:`LAYOUTS`).

    Returns
    -------
    EpochPlan
    """
    dt = np.dtype(dtype)
    sizes = np.asarray(cfg.layer_sizes, dtype=np.int64)
    L = len(sizes) - 1
    B = int(cfg.batch_size)
    per = WORK_ALIGN_BYTES // dt.itemsize
    layout_code = code(LAYOUTS, layout, "layout")
    chunk = ld = B
    if layout == "features":
        # A chunk of batch columns small enough for the caches, in whole vectors.
        fit = SMALL_KERNEL_RULE["chunk_bytes"] // (dt.itemsize * _blocks_per_column(cfg))
        chunk = max(per, min(B, fit // per * per))
        ld = -(-chunk // per) * per
    work_offsets = np.full((L + 1, 4), -1, dtype=np.int64)
    layer_keys = np.zeros(L + 1, dtype=np.uint64)
    drop_threshold = np.zeros(L + 1, dtype=np.uint64)
    keep_inv = np.ones(L + 1, dtype=np.float64)
    total = 0

    def take(n_units):
        nonlocal total
        off = total
        total += -(-ld * int(n_units) // per) * per
        return off

    seed_key = mix64_int(int(cfg.seed))
    work_offsets[0, 0] = take(sizes[0])
    for l in range(1, L):
        p = float(cfg.dropout[l - 1]) if cfg.dropout else 0.0
        work_offsets[l, 1] = take(sizes[l])
        layer_keys[l] = mix64_int(seed_key + (l + 1) * GOLDEN)
        if p > 0.0:
            keep = 1.0 - p
            drop_threshold[l] = dropout_threshold(keep)
            keep_inv[l] = 1.0 / keep
            work_offsets[l, 0] = take(sizes[l])
            work_offsets[l, 2] = take(sizes[l])
        else:
            work_offsets[l, 0] = work_offsets[l, 1]
        work_offsets[l, 3] = take(sizes[l])
    work_offsets[L, 1] = work_offsets[L, 3] = take(sizes[L])
    opt = code(OPTIMIZERS, cfg.optimizer, "optimizer")
    subgradient = cfg.l1_method == "subgradient"
    for a in (sizes, work_offsets, layer_keys, drop_threshold, keep_inv):
        a.setflags(write=False)
    offsets = _param_offsets(sizes)
    offsets.setflags(write=False)
    return EpochPlan(
        n_layers=L,
        layout=layout_code,
        activation=code(ACTIVATIONS, cfg.activation, "activation"),
        output=code(OUTPUTS, cfg.output, "output"),
        optimizer=opt,
        batch_size=B,
        sizes=sizes,
        param_offsets=offsets,
        work_offsets=work_offsets,
        work_size=max(total, 1),
        chunk_cols=chunk,
        ld=ld,
        layer_keys=layer_keys,
        drop_threshold=drop_threshold,
        keep_inv=keep_inv,
        l2=float(cfg.l2),
        l1=float(cfg.l1),
        penalty_div=float(cfg.penalty_div),
        momentum=float(cfg.momentum),
        beta1=float(cfg.beta1),
        beta2=float(cfg.beta2),
        adam_epsilon=float(cfg.epsilon),
        # The decay-in-GEMM update needs the whole step to be W - lr (dW + c2 W).
        fused_sgd=opt == OPTIMIZERS["sgd"] and not (cfg.l1 and subgradient),
        l1_proximal=cfg.l1_method == "proximal",
        l1_subgradient=subgradient,
        clip_eps=float(np.finfo(dt).eps),
    )


def _plan_key(cfg, dtype, layout):
    # Thread settings do not change the plan: every epoch layout runs from one plan.
    return (np.dtype(dtype), layout, cfg.layer_sizes, cfg.activation, cfg.output, cfg.batch_size,
            cfg.optimizer, cfg.momentum, cfg.beta1, cfg.beta2, cfg.epsilon, cfg.l2, cfg.l1,
            cfg.l1_method, cfg.penalty_div, tuple(cfg.dropout), cfg.seed)


def plan_for(cfg, state, layout="rows"):
    """The plan of this training run: built on its first epoch, then kept in
    ``state.workspace["plan"]`` (rebuilt only if ``cfg`` or the layout changes).

    Parameters
    ----------
    cfg : nnopt_fast.train.TrainConfig
    state : nnopt_fast.train.TrainState
    layout : {"rows", "features"}

    Returns
    -------
    EpochPlan
    """
    key = _plan_key(cfg, state.params.dtype, layout)
    cached = state.workspace.get("plan")
    if cached is None or cached[0] != key:
        plan = build_plan(cfg, state.params.dtype, layout)
        if not np.array_equal(plan.param_offsets, np.asarray(state.offsets)):
            raise ValueError("state.offsets do not match the layout of cfg.layer_sizes")
        cached = (key, plan)
        state.workspace["plan"] = cached
        # Backend views of the plan (C struct, workspace buffers) belong to the old plan.
        for name in [k for k in state.workspace if k != "plan"]:
            del state.workspace[name]
    return cached[1]

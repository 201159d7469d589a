"""The benchmark workloads W1-W7 of BENCH.md: data, hyper-parameters and FLOP counts."""

from dataclasses import dataclass

import numpy as np

#: Hyper-parameters shared by every workload (BENCH.md).
LR = 0.05
#: W7's Adam learning rate.
ADAM_LR = 0.001
#: Per-step L2 coefficient c in ``W <- W - lr (dW + c W)``.
L2_PER_STEP = 1e-4
DROPOUT = 0.2
DATA_SEED = 0
#: Seed of the training run itself (shuffling, dropout masks, initial weights).
RUN_SEED = 1


@dataclass(frozen=True)
class Workload:
    """One row of BENCH.md's workload table.

    Attributes
    ----------
    name : str
        ``"W1"`` ... ``"W7"``.
    label : str
    n_samples : int
    layers : tuple of int
        ``(n_in, hidden..., n_classes)``.
    batch_size : int
    optimizer : {"sgd", "adam"}
        SGD at lr 0.05 with the per-step L2 coefficient 1e-4 (W1-W6), or Adam at lr
        0.001 without penalty (W7, SimpleChains' blog setting).
    dropout : float
        On the hidden layers.
    """

    name: str
    label: str
    n_samples: int
    layers: tuple
    batch_size: int
    optimizer: str = "sgd"
    dropout: float = DROPOUT

    @property
    def flops(self):
        """FLOPs of one epoch: ``6 n sum(d_in d_out)`` (forward 2, backward 4 per MAC)."""
        return 6 * self.n_samples * sum(a * b for a, b in zip(self.layers[:-1], self.layers[1:]))

    @property
    def hidden(self):
        return self.layers[1:-1]

    @property
    def lr(self):
        return LR if self.optimizer == "sgd" else ADAM_LR

    @property
    def l2_per_step(self):
        return L2_PER_STEP if self.optimizer == "sgd" else 0.0

    @property
    def l2(self):
        """``nf.train``'s ``l2`` giving the per-step coefficient ``l2 / m = 1e-4``."""
        return self.l2_per_step * self.n_samples

    @property
    def sklearn_alpha(self):
        """scikit-learn's ``alpha``: its per-step coefficient is ``alpha / batch``."""
        return self.l2_per_step * self.batch_size


WORKLOADS = {
    w.name: w
    for w in (
        Workload("W1", "small", 50_000, (64, 32, 10), 32),
        Workload("W2", "medium", 60_000, (784, 256, 128, 10), 64),
        Workload("W3", "wide", 60_000, (784, 1024, 1024, 10), 256),
        Workload("W4", "stochastic", 20_000, (64, 32, 10), 1),
        Workload("W5", "full batch", 20_000, (784, 256, 128, 10), 20_000),
        Workload("W6", "narrow", 200_000, (24, 8, 2), 200),
        Workload("W7", "tiny full batch", 10_000, (4, 32, 16, 4), 10_000, optimizer="adam",
                 dropout=0.0),
    )
}


def make_data(workload, dtype=np.float32, seed=DATA_SEED):
    """Synthetic, learnable classification data of a workload.

    ``X ~ N(0, 1)``; labels are the argmax of a fixed random linear map of X, so every
    class is reachable and the task can be learned.

    Parameters
    ----------
    workload : Workload
    dtype : float32 or float64
    seed : int

    Returns
    -------
    X : ndarray of shape (n_samples, n_in), C-contiguous, ``dtype``
    y : ndarray of shape (n_samples,), int64 labels in ``[0, n_classes)``
    """
    rng = np.random.default_rng(seed)
    n, n_in, n_out = workload.n_samples, workload.layers[0], workload.layers[-1]
    X = rng.standard_normal((n, n_in), dtype=np.float32).astype(dtype, copy=False)
    proj = rng.standard_normal((n_in, n_out)).astype(np.float32)
    y = (X.astype(np.float32, copy=False) @ proj).argmax(axis=1).astype(np.int64)
    return np.ascontiguousarray(X), y


def parse_names(text):
    """``"W1,W3"`` -> ``["W1", "W3"]``, checked against :data:`WORKLOADS`."""
    names = [s.strip().upper() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workloads {unknown}; choose from {sorted(WORKLOADS)}")
    return names

"""One-epoch runners for nnopt_fast's backends and its peers, and the GEMM-rate probe."""

import os
import sys
import time
import warnings

import numpy as np

from workloads import RUN_SEED

#: Every runner name, in the order the report prints them. ``<backend>@base`` runs that
#: backend of the baseline source tree (``report.py --baseline``) in a process of its own;
#: ``<backend>:auto`` runs it with ``nf.train``'s default threads (``n_threads=None``: all
#: available cores under the thread budget's rule), the plain names with one thread.
RUNNERS = ("cython", "numba", "numpy", "cython:auto", "numba:auto", "torch", "sklearn",
           "cython@base", "numba@base")
NNOPT_BACKENDS = ("cython", "numba", "numpy")
#: The source tree of the ``@base`` runners (set by ``report.py --baseline``).
BASELINE = None
#: PyTorch threads (BENCH.md: 2); report.py --torch-threads overrides it.
TORCH_THREADS = 2


#: Samples of the training set the after-run loss is evaluated on.
N_EVAL = 5000


def eval_loss(P, y):
    """Mean cross-entropy of class probabilities ``P`` (n, K) for labels ``y``, in float64.

    Every runner's trained model is scored this same way (no dropout, no penalty), so the
    "loss after" column checks that all of them learned, on equal terms.
    """
    P = np.asarray(P, dtype=np.float64)
    p = np.clip(P[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.log(p).mean())


class Unavailable(Exception):
    """A runner cannot be built here (backend missing, torch not installed, ...)."""


class NnoptRunner:
    """nnopt_fast's training path (``run_epochs``, one epoch per call) on one backend.

    Buffers are allocated by the first (warm-up) epoch, exactly as in ``nf.train``.
    """

    def __init__(self, backend, workload, X, y, n_threads=1):
        import nnopt_fast as nf
        from nnopt_fast.kernels import get_backend
        from nnopt_fast.train.loop import make_config
        from nnopt_fast.train.state import TrainState

        info = nf.backends()[backend]
        if not info["available"]:
            raise Unavailable(info["reason"])
        self.name = backend if n_threads == 1 else f"{backend}:auto"
        self.note = ""
        self._be = get_backend(backend)
        self._X, self._y = X, y
        self.net = nf.MLP(workload.layers, "tanh", "softmax", X.dtype, random_state=RUN_SEED)
        self._cfg = make_config(self.net, batch_size=workload.batch_size,
                                n_samples=workload.n_samples, l2=workload.l2,
                                optimizer=workload.optimizer, dropout=workload.dropout,
                                seed=RUN_SEED, n_threads=n_threads)
        self._lr = workload.lr
        self._state = TrainState(self.net, self._cfg)
        self._rng = np.random.default_rng(RUN_SEED)

    def epoch(self):
        """Train one epoch; return its wall time in seconds."""
        from nnopt_fast.train.loop import run_epochs

        t0 = time.perf_counter()
        run_epochs(self._be, self._cfg, self._state, self._X, self._y, None, epochs=1,
                   lr=self._lr, rng=self._rng)
        return time.perf_counter() - t0

    def final_loss(self):
        return eval_loss(self.net.predict_proba(self._X[:N_EVAL]), self._y[:N_EVAL])


class TorchRunner:
    """PyTorch CPU eager: ``nn.Sequential`` of Linear/Tanh/Dropout, ``optim.SGD``.

    Tensors are preloaded; batches are indexed from a ``randperm`` each epoch. Weight decay
    applies to the weights only (nnopt_fast does not penalize biases), with the same
    per-step coefficient, so the update is ``W <- W - lr (dW + c W)`` in both.
    """

    def __init__(self, workload, X, y):
        try:
            import torch
        except ImportError as exc:
            raise Unavailable(f"torch is not installed ({exc}); pip install torch==2.13.0")
        torch.set_num_threads(TORCH_THREADS)
        torch.manual_seed(RUN_SEED)
        self.name = "torch"
        self.note = f"{TORCH_THREADS} threads"
        self._torch = torch
        layers = []
        sizes = workload.layers
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.Tanh())
                if workload.dropout:
                    layers.append(torch.nn.Dropout(workload.dropout))
        self.model = torch.nn.Sequential(*layers)
        weights = [p for p in self.model.parameters() if p.dim() > 1]
        biases = [p for p in self.model.parameters() if p.dim() == 1]
        groups = [{"params": weights, "weight_decay": workload.l2_per_step},
                  {"params": biases, "weight_decay": 0.0}]
        self.opt = (torch.optim.SGD(groups, lr=workload.lr, momentum=0)
                    if workload.optimizer == "sgd" else torch.optim.Adam(groups, lr=workload.lr))
        self.crit = torch.nn.CrossEntropyLoss()
        self._X = torch.from_numpy(X)
        self._y = torch.from_numpy(y)
        self._gen = torch.Generator().manual_seed(RUN_SEED)
        self._B = workload.batch_size
        self._n = workload.n_samples

    def epoch(self):
        torch = self._torch
        t0 = time.perf_counter()
        self.model.train()
        perm = torch.randperm(self._n, generator=self._gen)
        for s in range(0, self._n, self._B):
            idx = perm[s : s + self._B]
            self.opt.zero_grad(set_to_none=True)
            loss = self.crit(self.model(self._X[idx]), self._y[idx])
            loss.backward()
            self.opt.step()
        return time.perf_counter() - t0

    def final_loss(self):
        torch = self._torch
        self.model.eval()
        with torch.no_grad():
            P = torch.softmax(self.model(self._X[:N_EVAL]), dim=1).numpy()
        return eval_loss(P, self._y[:N_EVAL].numpy())


class SklearnRunner:
    """scikit-learn's ``MLPClassifier(solver="sgd", momentum=0)`` (or ``"adam"``), one
    ``partial_fit`` epoch.

    It has no dropout (so it does less work per step where the others drop units); its
    ``alpha`` is set so that the per-step L2 coefficient ``alpha / batch`` equals the
    others'.
    """

    def __init__(self, workload, X, y):
        from sklearn.neural_network import MLPClassifier

        self.name = "sklearn"
        self.note = "no dropout" if workload.dropout else ""
        self.clf = MLPClassifier(hidden_layer_sizes=workload.hidden, activation="tanh",
                                 solver=workload.optimizer, alpha=workload.sklearn_alpha,
                                 batch_size=workload.batch_size, learning_rate="constant",
                                 learning_rate_init=workload.lr, momentum=0.0,
                                 nesterovs_momentum=False, shuffle=True,
                                 random_state=RUN_SEED, max_iter=1)
        self._X, self._y = X, y
        self._classes = np.arange(workload.layers[-1])

    def epoch(self):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if hasattr(self.clf, "coefs_"):
                self.clf.partial_fit(self._X, self._y)
            else:
                self.clf.partial_fit(self._X, self._y, classes=self._classes)
        return time.perf_counter() - t0

    def final_loss(self):
        return eval_loss(self.clf.predict_proba(self._X[:N_EVAL]), self._y[:N_EVAL])


class BaselineRunner:
    """A backend of another source tree of nnopt_fast (the previous head, built beside
    this one), in a process of its own that runs :class:`NnoptRunner` on the same data:
    ``bench/tree_worker.py`` with that tree first on ``PYTHONPATH``."""

    def __init__(self, backend, workload):
        import subprocess

        if BASELINE is None:
            raise Unavailable("no baseline tree (report.py --baseline PATH)")
        self.name = f"{backend}@base"
        self.note = f"tree {BASELINE}"
        env = dict(os.environ, PYTHONPATH=os.path.join(BASELINE, "src"))
        worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tree_worker.py")
        self._proc = subprocess.Popen([sys.executable, worker, backend, workload.name],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                      text=True)
        ready = self._proc.stdout.readline().strip()
        if ready != "ready":
            raise Unavailable(f"the baseline worker did not start: {ready or 'no answer'}")

    def _ask(self, command):
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline().strip()
        if not answer:
            raise RuntimeError("the baseline worker died")
        return float(answer)

    def epoch(self):
        return self._ask("epoch")

    def final_loss(self):
        loss = self._ask("loss")
        self._proc.stdin.close()
        self._proc.wait(timeout=60)
        return loss


def make_runner(name, workload, X, y):
    """Build the runner ``name`` (see :data:`RUNNERS`); raises :class:`Unavailable`."""
    if name.endswith("@base"):
        return BaselineRunner(name.split("@")[0], workload)
    if name in NNOPT_BACKENDS:
        return NnoptRunner(name, workload, X, y)
    if name.endswith(":auto") and name.split(":")[0] in NNOPT_BACKENDS:
        return NnoptRunner(name.split(":")[0], workload, X, y, n_threads=None)
    if name == "torch":
        return TorchRunner(workload, X, y)
    if name == "sklearn":
        return SklearnRunner(workload, X, y)
    raise ValueError(f"runner must be one of {RUNNERS}, got {name!r}")


def gemm_rate(n=2048, repeats=3, dtype=np.float32):
    """Best float32 GEMM rate (FLOP/s) of a large numpy matmul with all BLAS threads.

    Parameters
    ----------
    n : int
        Square size; 2048 gives 17 GFLOP per call, well past any blocking threshold.
    repeats : int
        Calls timed; the best one counts (the floor is what the machine *can* do).
    """
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n), dtype=np.float32).astype(dtype)
    B = rng.standard_normal((n, n), dtype=np.float32).astype(dtype)
    C = np.empty((n, n), dtype=dtype)
    np.matmul(A, B, out=C)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(A, B, out=C)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best

"""Record or compare the exact results of many training epochs, for refactors that must not
change a bit.

A refactor of the compiled core promises bit-identical float64 results for the serial epoch
of every backend. This script runs a fixed design of configurations through each backend's
``run_epoch`` (3 epochs, small nets, every optimizer, activation, output, penalty, batch
size, dropout and sample-weight case) and writes the final parameters, optimizer buffers
and per-epoch losses to an ``.npz``; ``--compare`` reports, per backend and dtype, how many
runs differ and by how much.

Typical use, with the previous head built in a worktree beside this one::

    git worktree add ../base HEAD~1 && (cd ../base && python setup.py build_ext --inplace)
    PYTHONPATH=../base/src python tools/golden_epochs.py --out /tmp/old.npz
    PYTHONPATH=src python tools/golden_epochs.py --out /tmp/new.npz
    python tools/golden_epochs.py --compare /tmp/old.npz /tmp/new.npz
"""

import argparse
import itertools
import sys

import numpy as np

LAYERS = (6, 9, 5, 3)
N_SAMPLES = 45
EPOCHS = 3
LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adam": 0.01}
PENALTIES = {
    "none": (0.0, 0.0, "subgradient"),
    "l2": (0.5, 0.0, "subgradient"),
    "l1-sub": (0.0, 0.5, "subgradient"),
    "l1-prox": (0.0, 0.5, "proximal"),
    "l2+l1-sub": (0.5, 0.5, "subgradient"),
    "l2+l1-prox": (0.5, 0.5, "proximal"),
}


def design():
    """Every optimizer x output x penalty, with the other axes cycled through."""
    acts = ("tanh", "relu", "logistic", "identity")
    batches = (1, 7, 16, None)
    rows = []
    for i, (opt, out, pen) in enumerate(itertools.product(
            ("sgd", "momentum", "nesterov", "adam"), ("softmax", "logistic", "identity"),
            tuple(PENALTIES))):
        rows.append(dict(optimizer=opt, output=out, penalty=pen, activation=acts[i % 4],
                         batch=batches[(i // 4) % 4], dropout=(0.0, 0.3)[i % 2],
                         sample_weight=bool((i // 2) % 2), penalty_div=("m", 0)[(i // 3) % 2]))
    return rows


def _targets(rng, output, n, k, dt):
    if output == "softmax":
        return rng.integers(0, k, n).astype(np.int64)
    if output == "logistic":
        return (rng.random((n, k)) < 0.5).astype(dt)
    return rng.standard_normal((n, k)).astype(dt)


def run_one(backend, dtype, row, n_threads=1, parallel="sync"):
    """Final state of one configuration: a dict of arrays."""
    import nnopt_fast as nf
    from nnopt_fast.kernels import get_backend
    from nnopt_fast.train.loop import make_config
    from nnopt_fast.train.state import TrainState

    dt = np.dtype(dtype)
    rng = np.random.default_rng(2026)
    X = rng.standard_normal((N_SAMPLES, LAYERS[0])).astype(dt)
    T = _targets(rng, row["output"], N_SAMPLES, LAYERS[-1], dt)
    sw = (rng.random(N_SAMPLES) + 0.5).astype(dt) if row["sample_weight"] else None
    net = nf.MLP(LAYERS, activation=row["activation"], output=row["output"], dtype=dt,
                 random_state=7)
    l2, l1, method = PENALTIES[row["penalty"]]
    cfg = make_config(net, batch_size=row["batch"], n_samples=N_SAMPLES,
                      optimizer=row["optimizer"], l2=l2, l1=l1, l1_method=method,
                      penalty_div=None if row["penalty_div"] == "m" else 0.0,
                      dropout=row["dropout"], seed=99, n_threads=n_threads,
                      parallel=parallel, thread_mode="data")
    be = get_backend(backend)
    state = TrainState(net, cfg)
    losses = []
    for epoch in range(EPOCHS):
        perm = np.random.default_rng(epoch).permutation(N_SAMPLES).astype(np.int64)
        with np.errstate(all="ignore"):
            data, pen, n_steps, status = be.run_epoch(cfg, state, X, T, sw, perm,
                                                      LR[row["optimizer"]], state.step)
        state.step += n_steps
        state.t += n_steps
        losses.append((data, pen, n_steps, status))
    return {"params": net.params.copy(), "velocity": state.velocity.copy(),
            "m": state.m.copy(), "v": state.v.copy(),
            "losses": np.asarray(losses, dtype=np.float64)}


def record(path, backends, threads):
    out = {}
    rows = design()
    modes = [(1, "sync")] + ([(2, "sync")] if threads else [])
    for backend in backends:
        for dtype in ("float64", "float32"):
            for n_threads, parallel in modes:
                if n_threads > 1 and backend == "numpy":
                    continue
                for i, row in enumerate(rows):
                    res = run_one(backend, dtype, row, n_threads, parallel)
                    for k, a in res.items():
                        out[f"{backend}|{dtype}|{n_threads}{parallel}|{i}|{k}"] = a
    np.savez(path, **out)
    print(f"wrote {len(out)} arrays for {len(rows)} configurations to {path}")


def compare(old_path, new_path):
    old, new = np.load(old_path), np.load(new_path)
    groups = {}
    missing = sorted(set(old.files) ^ set(new.files))
    for key in sorted(set(old.files) & set(new.files)):
        backend, dtype, mode, i, name = key.split("|")
        a, b = old[key], new[key]
        g = groups.setdefault((backend, dtype, mode), {"runs": set(), "diff": set(), "max": 0.0})
        g["runs"].add(i)
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
            g["diff"].add(i)
            if a.shape == b.shape and a.size:
                with np.errstate(all="ignore"):
                    scale = max(float(np.nanmax(np.abs(a))), 1e-300)
                    g["max"] = max(g["max"], float(np.nanmax(np.abs(a - b))) / scale)
            else:
                g["max"] = float("inf")
    bad = False
    for (backend, dtype, mode), g in sorted(groups.items()):
        n_diff = len(g["diff"])
        bad |= n_diff > 0
        status = "bit-identical" if n_diff == 0 else (
            f"{n_diff} runs differ, max rel {g['max']:.2e}")
        print(f"{backend:7s} {dtype:8s} {mode:6s} {len(g['runs']):3d} runs: {status}")
    if missing:
        print(f"{len(missing)} arrays only in one file, e.g. {missing[:3]}")
    return 1 if bad or missing else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the results of this tree to this .npz")
    ap.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"))
    ap.add_argument("--backends", default="cython,numba,numpy")
    ap.add_argument("--threads", action="store_true", help="also record 2-thread sync runs")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if not args.out:
        ap.error("give --out or --compare")
    record(args.out, args.backends.split(","), args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Smoke test of an installed nnopt_fast: import, backends, one short train each, parity."""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# The parity bound is the test suite's, kept in one place (tests/tolerances.py); tests/
# holds no package named nnopt_fast, so this cannot shadow the installed one.
sys.path.insert(0, str(REPO / "tests"))
from tolerances import TRAIN_WEIGHT_RTOL  # noqa: E402

COMPILED = ("cython", "numba")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--installed", action="store_true",
                   help="fail unless nnopt_fast is imported from outside this source tree")
    p.add_argument("--require", default="",
                   help="comma-separated backends that must be available, e.g. cython,numba")
    p.add_argument("--no-extension", action="store_true",
                   help="expect an install without the compiled extension: the cython "
                        "backend is unavailable, 'auto' falls back with a warning that "
                        "names the missing extension, and training still works")
    return p.parse_args(argv)


def make_data(rng, n=240, n_in=8, n_out=3):
    """A learnable 3-class problem: labels are the argmax of a fixed linear map of X."""
    X = rng.standard_normal((n, n_in))
    y = np.argmax(X @ rng.standard_normal((n_in, n_out)), axis=1)
    return X, y


def train_once(nf, backend, X, y):
    """Two epochs of mini-batch SGD with L2 and dropout, float64, fixed seeds."""
    net = nf.MLP([X.shape[1], 16, 3], dtype=np.float64, random_state=0)
    hist = nf.train(net, X, y, epochs=2, batch_size=16, lr=0.05, l2=1e-3, dropout=0.2,
                    random_state=7, backend=backend, n_threads=1)
    return net, hist


def check_installed(nf):
    where = Path(nf.__file__).resolve()
    if REPO in where.parents:
        raise SystemExit(f"FAIL: nnopt_fast imported from the source tree ({where}), "
                         "not from the installed package")
    print(f"nnopt_fast {nf.__version__} imported from {where.parent}")


def check_no_extension(nf, X, y):
    """Without the extension, 'auto' must fall back and say so in a warning."""
    info = nf.backends()
    if info["cython"]["available"]:
        raise SystemExit("FAIL: the cython backend loaded in a build without the extension")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = nf.MLP([X.shape[1], 16, 3], dtype=np.float64, random_state=0)
        hist = nf.train(net, X, y, epochs=1, batch_size=16, lr=0.05, backend="auto")
    texts = [str(w.message) for w in caught]
    if not any("extension" in t.lower() for t in texts):
        raise SystemExit("FAIL: backend='auto' fell back to "
                         f"{hist.backend!r} without a warning naming the missing compiled "
                         f"extension (warnings seen: {texts})")
    print(f"no extension: 'auto' trained on {hist.backend!r} and warned: {texts[0]}")


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    import nnopt_fast as nf

    if args.installed:
        check_installed(nf)
    info = nf.backends()
    for name, entry in info.items():
        state = "available" if entry["available"] else f"unavailable ({entry['reason']})"
        extra = {k: v for k, v in entry.items() if k not in ("available", "reason")}
        print(f"backend {name}: {state} {extra if extra else ''}")
    missing = [b for b in filter(None, args.require.split(",")) if not info[b]["available"]]
    if missing:
        raise SystemExit(f"FAIL: required backends unavailable: {missing}")

    rng = np.random.default_rng(2024)
    X, y = make_data(rng)
    ref_net, ref_hist = train_once(nf, "numpy", X, y)
    if not np.isfinite(ref_hist.loss).all():
        raise SystemExit(f"FAIL: numpy backend losses not finite: {ref_hist.loss}")
    print(f"train numpy: losses {np.round(ref_hist.loss, 6).tolist()}")
    rtol = TRAIN_WEIGHT_RTOL[np.dtype(np.float64)]
    for name in COMPILED:
        if not info[name]["available"]:
            continue
        t = time.perf_counter()
        net, hist = train_once(nf, name, X, y)
        err = np.max(np.abs(net.params - ref_net.params)) / np.max(np.abs(ref_net.params))
        print(f"train {name}: losses {np.round(hist.loss, 6).tolist()}, "
              f"max weight error vs numpy {err:.2e} (bound {rtol:g}), "
              f"{time.perf_counter() - t:.1f} s with compilation")
        if not err <= rtol:
            raise SystemExit(f"FAIL: {name} disagrees with the reference: {err:.3e} > {rtol:g}")
    if args.no_extension:
        check_no_extension(nf, X, y)
    print(f"smoke test passed in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

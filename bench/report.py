"""Print BENCH.md's table: interleaved one-epoch timings of nnopt_fast and its peers.

Usage::

    python bench/report.py [--workloads W1,W2] [--repeats 5] [--runners cython,numba,torch]
                           [--torch-threads 2] [--blas-threads N] [--no-cold-start]
                           [--json out.json]
"""

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runners  # noqa: E402
from runners import RUNNERS, Unavailable, gemm_rate, make_runner  # noqa: E402
from workloads import WORKLOADS, make_data, parse_names  # noqa: E402

DEFAULT_WORKLOADS = "W1,W2,W3,W4,W5,W6,W7"


# ---------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------
def cpu_model():
    """The CPU's model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(mod):
    try:
        return __import__(mod).__version__
    except Exception as exc:  # not installed, or broken: say so in the report
        return f"n/a ({type(exc).__name__})"


def environment():
    """CPU, threads, BLAS libraries and their threading, and library versions."""
    import scipy.linalg  # noqa: F401  (loads scipy's own BLAS so threadpoolctl lists it)

    import nnopt_fast as nf
    from nnopt_fast.kernels import get_backend

    env = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "versions": {m: _version(m) for m in ("nnopt_fast", "numpy", "scipy", "sklearn",
                                               "numba", "torch", "threadpoolctl")},
        "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                      "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")},
        "backends": {k: {kk: vv for kk, vv in v.items()} for k, v in nf.backends().items()},
    }
    try:
        import torch

        env["torch_threads"] = torch.get_num_threads()
        env["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "other"
    except ImportError:
        env["torch_threads"] = None
    for name, b in nf.backends().items():
        if b["available"]:
            get_backend(name)  # loads its native libraries, so their thread pools are listed
    env["threadpools"] = thread_pools()
    return env


def thread_pools():
    """Every BLAS / OpenMP thread pool loaded in this process (threadpoolctl)."""
    import threadpoolctl

    pools = []
    for p in threadpoolctl.threadpool_info():
        pools.append({k: p.get(k) for k in ("user_api", "internal_api", "version",
                                             "num_threads", "threading_layer", "architecture")}
                     | {"library": os.path.basename(p.get("filepath", ""))})
    return pools


def print_environment(env, out):
    out(f"- CPU: {env['cpu']}; {env['cores']} cores ({env['affinity']} usable); "
        f"load average at start {tuple(round(x, 2) for x in env['loadavg'] or ())}")
    out(f"- Python {env['python']}; " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
    out(f"- thread environment: {env['thread_env']}; torch threads: {env['torch_threads']}"
        + (f" ({env.get('torch_blas')})" if env.get("torch_blas") else ""))
    for p in env["threadpools"]:
        out(f"- thread pool: {p['internal_api']} {p['version']} ({p['library']}), "
            f"{p['num_threads']} threads, threading {p['threading_layer']}, "
            f"arch {p['architecture']}")
    for name, b in env["backends"].items():
        detail = {k: v for k, v in b.items() if k not in ("available", "reason")}
        state = "available" if b["available"] else f"UNAVAILABLE: {b['reason']}"
        out(f"- backend {name}: {state} {detail if detail else ''}".rstrip())


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------
def time_workload(workload, runner_names, repeats, log):
    """Interleaved one-epoch timings of every runner on one workload.

    Each runner first trains one warm-up epoch (JIT compilation, buffer allocation);
    then ``repeats`` rounds time one epoch of every runner, the order rotating from
    round to round so that no runner always follows the same one. A GEMM-rate probe
    runs in every round too, so the floor is measured under the same load.
    """
    X, y = make_data(workload)
    active, skipped = {}, {}
    for name in runner_names:
        try:
            active[name] = make_runner(name, workload, X, y)
        except Unavailable as exc:
            skipped[name] = str(exc)
    def epoch(name):
        # One runner failing (a divergence, a backend bug) must not lose the others' figures.
        try:
            return active[name].epoch()
        except Exception as exc:
            skipped[name] = f"failed: {type(exc).__name__}: {exc}"
            log(f"  {workload.name} {name}: {skipped[name]}")
            return None

    for name in list(active):
        t = epoch(name)
        if t is None:
            del active[name]
        else:
            log(f"  {workload.name} {name}: warm-up epoch {t:.3f} s")
    times = {name: [] for name in active}
    rates = [gemm_rate()]
    order = list(active)
    for k in range(repeats):
        for name in order[k % len(order):] + order[: k % len(order)]:
            if name in skipped:
                continue
            t = epoch(name)
            if t is None:
                times.pop(name)
            else:
                times[name].append(t)
        rates.append(gemm_rate(repeats=2))
        log(f"  {workload.name} round {k + 1}/{repeats}: "
            + ", ".join(f"{n} {t[-1]:.4f}" for n, t in times.items()))
    losses = {name: active[name].final_loss() for name in times}
    notes = {name: r.note for name, r in active.items()}
    del active, X, y
    gc.collect()
    return {"times": times, "gemm_rates": rates, "losses": losses, "notes": notes,
            "skipped": skipped}


# ---------------------------------------------------------------------------
# cold start
# ---------------------------------------------------------------------------
_COLD_CODE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
tl0 = time.perf_counter()
X = np.load(sys.argv[1]); y = np.load(sys.argv[2])
tl1 = time.perf_counter()
import nnopt_fast as nf
t2 = time.perf_counter()
net = nf.MLP((64, 32, 10), dtype=np.float32, random_state=1)
nf.train(net, X, y, epochs=1, batch_size=32, lr=0.05, l2=float(sys.argv[4]), dropout=0.2,
         random_state=1, backend=sys.argv[3])
t3 = time.perf_counter()
print(json.dumps({"import": (t2 - t0) - (tl1 - tl0), "train": t3 - t2,
                  "total": (t3 - t0) - (tl1 - tl0)}))
"""


def _cold_run(backend, files, env):
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _COLD_CODE, *files, backend,
                          str(WORKLOADS["W1"].l2)], capture_output=True, text=True, env=env,
                         timeout=600)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    out["process_wall"] = wall
    return out


def cold_start(repeats, log, threads=None):
    """``import nnopt_fast`` + a first one-epoch ``train`` on W1, each in a fresh process.

    Cython; Numba with its on-disk cache disabled (every kernel compiled at first use);
    and Numba with a populated cache (a private cache directory, filled by one untimed
    run first). Medians over ``repeats`` processes.
    """
    import nnopt_fast as nf

    avail = {k: v["available"] for k, v in nf.backends().items()}
    X, y = make_data(WORKLOADS["W1"])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = (os.path.join(tmp, "X.npy"), os.path.join(tmp, "y.npy"))
        np.save(files[0], X)
        np.save(files[1], y)
        base = dict(os.environ)
        if threads:
            base |= {k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                               "MKL_NUM_THREADS")}
        cache_dir = os.path.join(tmp, "numba-cache")
        cases = [("cython", "cython", base),
                 ("numba, no cache", "numba", base | {"NNOPT_FAST_NUMBA_CACHE": "0"}),
                 ("numba, cached", "numba", base | {"NUMBA_CACHE_DIR": cache_dir})]
        for label, backend, env in cases:
            if not avail.get(backend):
                results[label] = {"error": "backend unavailable"}
                continue
            if label == "numba, cached":
                _cold_run(backend, files, env)  # fills the cache
            runs = [_cold_run(backend, files, env) for _ in range(repeats)]
            errors = [r["error"] for r in runs if "error" in r]
            if errors:
                results[label] = {"error": errors[0]}
            else:
                results[label] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            log(f"  cold start {label}: {results[label]}")
    return results


# ---------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------
def _fmt_s(t):
    return f"{t:.3g}" if t < 100 else f"{t:.0f}"


def table(results, best_rate, out):
    """Markdown table: s/epoch, samples/s, ratio to PyTorch and to the floor."""
    out("| workload | runner | s/epoch (median) | min–max | samples/s | vs PyTorch | "
        "vs floor | vs base | CE after | note |")
    out("|---|---|---|---|---|---|---|---|---|---|")
    for wname, res in results.items():
        w = WORKLOADS[wname]
        floor = w.flops / best_rate
        med = {n: statistics.median(t) for n, t in res["times"].items() if t}
        torch_t = med.get("torch")
        floor_vs_torch = f"{torch_t / floor:.1f}× faster" if torch_t else "—"
        out(f"| {wname} | compute floor | {_fmt_s(floor)} | | {w.n_samples / floor:,.0f} | "
            f"{floor_vs_torch} | 1.00× | | | {w.flops / 1e9:.3g} GFLOP at "
            f"{best_rate / 1e9:.0f} GFLOP/s |")
        for name, t in med.items():
            ts = res["times"][name]
            vs_torch = f"{torch_t / t:.2f}× faster" if torch_t else "—"
            base = med.get(f"{name}@base")
            vs_base = f"{base / t:.2f}× faster" if base else ""
            out(f"| {wname} | {name} | {_fmt_s(t)} | {_fmt_s(min(ts))}–{_fmt_s(max(ts))} | "
                f"{w.n_samples / t:,.0f} | {vs_torch} | {t / floor:.2f}× | {vs_base} | "
                f"{res['losses'][name]:.4f} | {res['notes'].get(name, '')} |")
        for name, why in res["skipped"].items():
            out(f"| {wname} | {name} | not run | | | | | | | {why} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default=DEFAULT_WORKLOADS,
                    help=f"comma-separated subset of {DEFAULT_WORKLOADS} (default: all)")
    ap.add_argument("--repeats", type=int, default=5,
                    help="timed epochs per runner after the warm-up epoch (default 5)")
    ap.add_argument("--runners", default=",".join(RUNNERS),
                    help=f"comma-separated subset of {','.join(RUNNERS)}")
    ap.add_argument("--torch-threads", type=int, default=runners.TORCH_THREADS,
                    help=f"PyTorch's intra-op threads (default {runners.TORCH_THREADS}, BENCH.md)")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit every BLAS/OpenMP pool to this many threads (threadpoolctl); "
                         "default: the libraries' own (all cores)")
    ap.add_argument("--no-cold-start", action="store_true", help="skip the cold-start runs")
    ap.add_argument("--cold-repeats", type=int, default=3)
    ap.add_argument("--baseline", metavar="TREE",
                    help="a source tree of nnopt_fast built beside this one (e.g. a git "
                         "worktree of the previous head): adds the runners cython@base and "
                         "numba@base, interleaved with this tree's")
    ap.add_argument("--json", help="also write the raw timings to this file")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    names = parse_names(args.workloads)
    runners.TORCH_THREADS = args.torch_threads
    runners.BASELINE = args.baseline
    runner_names = [r.strip() for r in args.runners.split(",") if r.strip()]
    bad = [r for r in runner_names if r not in RUNNERS]
    if bad:
        ap.error(f"unknown runners {bad}; choose from {list(RUNNERS)}")

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    env = environment()
    if env["torch_threads"] is not None:
        env["torch_threads"] = args.torch_threads
    results = {}
    t_start = time.perf_counter()
    limiter = contextlib.nullcontext()
    if args.blas_threads:
        from threadpoolctl import threadpool_limits

        # Every native pool is loaded by now (environment() imported them all).
        limiter = threadpool_limits(limits=args.blas_threads)
    with limiter:
        env["threadpools"] = thread_pools()
        for wname in names:
            log(f"{wname}: {WORKLOADS[wname]}")
            results[wname] = time_workload(WORKLOADS[wname], runner_names, args.repeats, log)
    best_rate = max(r for res in results.values() for r in res["gemm_rates"])
    cold = {} if args.no_cold_start else cold_start(args.cold_repeats, log, args.blas_threads)
    env["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    out = print
    out(f"## One run, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    out("")
    print_environment(env, out)
    out(f"- best float32 GEMM (numpy matmul 2048³, {args.blas_threads or 'all'} BLAS "
        f"threads) in this run: "
        f"{best_rate / 1e9:.0f} GFLOP/s; load average at end "
        f"{tuple(round(x, 2) for x in env['loadavg_end'] or ())}")
    out(f"- {args.repeats} timed epochs per runner after one warm-up epoch, interleaved; "
        f"medians. float32, tanh, softmax CE; W1-W6 SGD lr 0.05, L2 1e-4 per step, dropout "
        f"0.2; W7 Adam lr 0.001, no penalty, no dropout. nnopt_fast on one thread.")
    out("")
    table(results, best_rate, out)
    if cold:
        out("")
        out("Cold start: fresh process, `import nnopt_fast` (numpy included) + first "
            "1-epoch `train` on W1, float32 (median of "
            f"{args.cold_repeats} processes; seconds):")
        out("")
        out("| backend | import | first train | import + train | process wall |")
        out("|---|---|---|---|---|")
        for label, r in cold.items():
            if "error" in r:
                out(f"| {label} | {r['error']} | | | |")
            else:
                out(f"| {label} | {r['import']:.3f} | {r['train']:.3f} | {r['total']:.3f} | "
                    f"{r['process_wall']:.3f} |")
    log(f"total {time.perf_counter() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"env": env, "results": results, "best_gemm_rate": best_rate,
                       "cold_start": cold}, fh, indent=1, default=str)


if __name__ == "__main__":
    main()

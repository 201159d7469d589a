"""``nnopt-fast diagnose``: report, learning curve, validation curve and bias-variance plots."""

import argparse
import os
import sys
import time

import numpy as np

#: Default network of the command: small enough that the whole run takes seconds on digits.
DEFAULTS = {"layers": (32,), "alpha": 1e-4, "max_iter": 100, "n_rounds": 10, "cv": 3,
            "random_state": 0, "n_jobs": -1}
ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


class _Usage(Exception):
    """A bad option or data file, reported on one line."""


def _layers(text):
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 64,32, got {text!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    return sizes


def add_arguments(parser):
    """Add the options of ``nnopt-fast diagnose`` to an argparse parser."""
    d = DEFAULTS
    parser.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    parser.add_argument("--data", metavar="FILE",
                        help=".csv (target in the last column, optional header) or .npz with "
                             "arrays X and y; default: scikit-learn's digits")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="directory for report.txt and the PNG figures (created)")
    parser.add_argument("--task", choices=["auto", "classification", "regression"],
                        default="auto",
                        help="auto: regression when the target holds non-integer numbers")
    parser.add_argument("--layers", type=_layers, default=d["layers"], metavar="SIZES",
                        help="hidden layer sizes, comma-separated")
    parser.add_argument("--alpha", type=float, default=d["alpha"], help="L2 penalty")
    parser.add_argument("--max-iter", type=int, default=d["max_iter"], help="epochs")
    parser.add_argument("--target-error", type=float, default=None,
                        help="achievable error (e.g. human level): misclassification rate or "
                             "mse; default: judge bias against 0")
    parser.add_argument("--n-rounds", type=int, default=d["n_rounds"],
                        help="bootstrap rounds of each bias-variance decomposition")
    parser.add_argument("--cv", type=int, default=d["cv"], help="folds of the curves")
    parser.add_argument("--random-state", type=int, default=d["random_state"])
    parser.add_argument("--n-jobs", type=int, default=d["n_jobs"],
                        help="parallel fits (joblib; -1: all cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _fail(message):
    """Raise the main command line's one-line usage error (or ours when run standalone)."""
    try:
        from ..cli import UsageError
    except ImportError:
        raise _Usage(message) from None
    raise UsageError(message)


def _is_regression(y, task):
    if task != "auto":
        return task == "regression"
    y = np.asarray(y)
    return y.dtype.kind == "f" and bool(np.any(y != np.round(y)))


def make_estimator(regression, layers, alpha, max_iter, random_state):
    """Standardizing pipeline around nnopt_fast's MLP (scikit-learn's if not available)."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    try:
        import nnopt_fast as nf

        cls = nf.MLPRegressor if regression else nf.MLPClassifier
    except AttributeError:
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        cls = MLPRegressor if regression else MLPClassifier
    mlp = cls(hidden_layer_sizes=layers, alpha=alpha, max_iter=max_iter,
              random_state=random_state)
    # Scaling inside the pipeline: every fit (bootstrap, fold) scales on its own rows only.
    return Pipeline([("scale", StandardScaler()), ("mlp", mlp)])


def run(args):
    """Carry out ``nnopt-fast diagnose``; returns the exit status (0)."""
    from sklearn.model_selection import train_test_split

    from . import (
        bias_variance_curve,
        diagnose,
        learning_curve,
        plot_bias_variance_curve,
        plot_learning_curve,
        plot_validation_curve,
        validation_curve,
    )

    for name in ("n_rounds", "cv", "max_iter"):
        if getattr(args, name) < (2 if name == "cv" else 1):
            _fail(f"diagnose: --{name.replace('_', '-')} is too small: {getattr(args, name)}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _fail("diagnose: the figures need matplotlib: pip install 'nnopt_fast[plot]'")
    if args.data is None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        data_name = "digits"
    else:
        from ..cli import load_data

        X, y = load_data(args.data, integer_labels=False)
        if len(X) < 2:
            _fail(f"--data: {args.data}: expected at least 2 rows, got {len(X)}")
        data_name = os.path.basename(args.data)
    regression = _is_regression(y, args.task)
    if regression:
        y = np.asarray(y, dtype=np.float64)
    os.makedirs(args.out, exist_ok=True)
    est = make_estimator(regression, args.layers, args.alpha, args.max_iter, args.random_state)
    progress = not args.quiet
    common = dict(n_jobs=args.n_jobs, progress=progress)
    t0 = time.perf_counter()
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))

    say(f"diagnose: {data_name}: {X.shape[0]} samples, {X.shape[1]} features, "
        f"{'regression' if regression else f'{len(np.unique(y))} classes'}; "
        f"{type(est.named_steps['mlp']).__module__.split('.')[0]}'s "
        f"{type(est.named_steps['mlp']).__name__}{args.layers}")
    rep = diagnose(est, X, y, target_error=args.target_error, n_rounds=args.n_rounds,
                   random_state=args.random_state, **common)
    lc = learning_curve(est, X, y, cv=args.cv, random_state=args.random_state, **common)
    vc = validation_curve(est, X, y, "mlp__alpha", ALPHAS, cv=args.cv,
                          random_state=args.random_state, **common)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X, y, test_size=0.25, random_state=args.random_state,
        stratify=None if regression else y)
    bvc = bias_variance_curve(est, X_tr, y_tr, X_va, y_va, "mlp__alpha", ALPHAS,
                              n_rounds=args.n_rounds, loss="mse" if regression else "0-1",
                              random_state=args.random_state, **common)

    figures = {"learning_curve.png": plot_learning_curve(lc),
               "validation_curve_alpha.png": plot_validation_curve(vc),
               "bias_variance_alpha.png": plot_bias_variance_curve(bvc)}
    for name, fig in figures.items():
        fig.savefig(os.path.join(args.out, name), dpi=100)
    text = "\n\n".join([
        f"data: {data_name}, {X.shape[0]} samples, {X.shape[1]} features",
        str(rep), str(lc), str(vc), "bias-variance over mlp__alpha\n" + str(bvc),
        f"total time: {time.perf_counter() - t0:.1f} s",
    ]) + "\n"
    with open(os.path.join(args.out, "report.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text, end="")
    print(f"wrote {', '.join(['report.txt', *figures])} to {args.out}")
    return 0


def main(argv=None):
    """Run ``diagnose`` on its own: ``python -m nnopt_fast.diagnosis.cli --out DIR``."""
    parser = add_arguments(argparse.ArgumentParser(prog="nnopt-fast diagnose"))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except Exception as exc:
        if type(exc).__name__ in ("UsageError", "_Usage"):
            print(f"nnopt-fast: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())

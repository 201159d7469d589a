"""``nnopt-fast diagnose``: report, learning curve, validation curve and bias-variance figures."""

import argparse
import os
import sys
import time
import warnings

import numpy as np

from .options import (
    UsageError,
    add,
    add_common_options,
    add_data_options,
    add_penalty_options,
    int_list,
    one_line,
)

#: Default network and effort. 600 epochs: every fit of a default run on digits
#: converges (scikit-learn's tol) before it, alpha = 10 on bootstrap resamples taking the
#: longest (up to ~450 epochs, one fit of 60 past 500); 100 left most unconverged.
DEFAULTS = {"layers": (32,), "alpha": 1e-4, "epochs": 600, "n_rounds": 10, "cv": 3,
            "seed": 0, "n_jobs": -1}
ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
FORMATS = ("png", "svg", "pdf")
#: The estimators' batch size (``batch_size="auto"``), to convert ``--l2`` to alpha.
AUTO_BATCH = 200


def add_parser(sub):
    """Add ``diagnose`` and its options to the subcommands ``sub``."""
    p = sub.add_parser(
        "diagnose", help="bias-variance diagnosis, learning and validation curves",
        description="Diagnose bias and variance of a standardizing pipeline around "
                    "nnopt_fast's MLPClassifier or MLPRegressor on a data set: a text "
                    "report with a verdict and tried next steps, and the learning curve, "
                    "validation curve and bias-variance figures.")
    add_data_options(p, (".csv (the target in the last column, or --label-column) or .npz "
                         "with arrays X and y", "scikit-learn's digits"))
    add(p, "--out", metavar="DIR", required=True,
        help="directory for the report and the figures (created; required)")
    add(p, "--task", choices=["auto", "classification", "regression"], default="auto",
        help="auto: regression for targets with fractional parts, or integers with more "
             "than 20 distinct values and more than one per 20 rows; a regression "
             "target is standardized inside every fit")
    add(p, "--layers", type=int_list, default=DEFAULTS["layers"], metavar="SIZES",
        help="hidden layer sizes, comma-separated")
    add_penalty_options(p, {
        "l2": ("; converted to alpha = LAMBDA*B/m with m the diagnosis's training rows "
               f"and B = min({AUTO_BATCH}, m), the estimators' batch", "not set"),
        "alpha": ("", DEFAULTS["alpha"])})
    add_common_options(p, seed_help="seeds the splits, the bootstrap rounds and the "
                                    "networks", epochs_default=DEFAULTS["epochs"],
                       epochs_help="most passes over the data per fit (max_iter; a fit "
                                   "stops earlier once it converges)")
    # The spellings of earlier versions, kept working.
    p.add_argument("--max-iter", dest="epochs", type=int, default=argparse.SUPPRESS,
                   help="the same as --epochs")
    p.add_argument("--random-state", dest="seed", type=int, default=argparse.SUPPRESS,
                   help="the same as --seed")
    add(p, "--target-error", type=float, shown="judge bias against 0",
        help="achievable error (e.g. human level): misclassification rate or mse")
    add(p, "--n-rounds", type=int, default=DEFAULTS["n_rounds"],
        help="bootstrap rounds of each bias-variance decomposition")
    add(p, "--cv", type=int, default=DEFAULTS["cv"], help="folds of the curves")
    add(p, "--n-jobs", type=int, default=DEFAULTS["n_jobs"],
        help="parallel fits (joblib; -1: all cores)")
    add(p, "--format", choices=FORMATS, default="png", help="file format of the figures")
    add(p, "--quiet", action="store_true",
        help="no progress bars and no warnings of the fits (they are counted in the "
             "report)")
    p.set_defaults(func=run)


def make_estimator(regression, layers, alpha, epochs, seed):
    """The standardizing pipeline diagnosed: nnopt_fast's MLP behind a StandardScaler,
    and, for regression, a standardized target (TransformedTargetRegressor)."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    import nnopt_fast as nf

    cls = nf.MLPRegressor if regression else nf.MLPClassifier
    mlp = cls(hidden_layer_sizes=layers, alpha=alpha, max_iter=epochs, random_state=seed)
    # Scaling inside the pipeline: every fit (bootstrap, fold) scales on its own rows only.
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", mlp)])
    if regression:
        return TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())
    return pipe


def _check(args):
    for flag, value, low in (("--n-rounds", args.n_rounds, 1), ("--cv", args.cv, 2),
                             ("--epochs", args.epochs, 1)):
        if value < low:
            raise UsageError(f"diagnose: {flag} must be >= {low}, got {value}")
    if args.target_error is not None and args.target_error < 0:
        raise UsageError(f"diagnose: --target-error must be >= 0, got {args.target_error}")


def _load(args):
    from .data import Dataset, load_data

    if args.data is None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return Dataset(X.astype(np.float64), y, "digits")
    data = load_data(args.data, args.header, args.label_column)
    if len(data.X) < 2:
        raise UsageError(f"--data: {args.data}: expected at least 2 rows, got {len(data.X)}")
    return data


def _targets(data, task):
    if task == "regression":
        if data.y.dtype.kind not in "biuf":
            raise UsageError(f"--data: {data.name}: --task regression needs numeric targets; "
                             f"{data.label_name} holds strings")
        return np.asarray(data.y, dtype=np.float64)
    y = data.y
    if y.dtype.kind == "f" and np.all(y == np.round(y)):  # labels 1, 2, ... not 1.0
        y = y.astype(np.int64)
    if len(np.unique(y)) < 2:
        raise UsageError(f"--data: {data.name}: needs at least two classes")
    return y


def _alpha(args, n_rows):
    if args.l2 is None:
        return DEFAULTS["alpha"] if args.alpha is None else args.alpha
    m = int(n_rows * 0.75)  # nf.diagnose's training split
    return args.l2 * min(AUTO_BATCH, m) / m


def _describe(est, layers):
    mlp = est.regressor if hasattr(est, "regressor") else est
    return f"{type(mlp.named_steps['mlp']).__name__}({','.join(str(n) for n in layers)})"


def _warning_lines(caught, quiet):
    """The report's line on fits that did not converge, and the other warnings to show."""
    from sklearn.exceptions import ConvergenceWarning

    unconverged, others = 0, []
    for w in caught:
        n_fits = getattr(w.message, "n_fits", None)
        if issubclass(w.category, ConvergenceWarning) and n_fits is not None:
            unconverged += n_fits
        elif not quiet:
            others.append(f"warning: {w.category.__name__}: {one_line(w.message)}")
    line = None
    if unconverged:
        line = (f"convergence: {unconverged} fits stopped at --epochs before converging "
                f"(ConvergenceWarning); raise --epochs for converged curves")
    return line, others


def _run_diagnosis(args, est, X, y, regression, progress):
    from sklearn.model_selection import train_test_split

    from ..diagnosis import bias_variance_curve, diagnose, learning_curve, validation_curve
    from ..diagnosis._common import find_param

    common = dict(n_jobs=args.n_jobs, progress=progress)
    rep = diagnose(est, X, y, target_error=args.target_error, n_rounds=args.n_rounds,
                   random_state=args.seed, **common)
    lc = learning_curve(est, X, y, cv=args.cv, random_state=args.seed, **common)
    key = find_param(est, "alpha")
    vc = validation_curve(est, X, y, key, ALPHAS, cv=args.cv, random_state=args.seed,
                          **common)
    stratify = None
    if not regression:
        _, counts = np.unique(y, return_counts=True)
        stratify = y if counts.min() >= 2 else None
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.25, stratify=stratify,
                                              random_state=args.seed)
    bvc = bias_variance_curve(est, X_tr, y_tr, X_va, y_va, key, ALPHAS,
                              n_rounds=args.n_rounds, loss="mse" if regression else "0-1",
                              random_state=args.seed, **common)
    return rep, lc, vc, bvc


def _figures(args, stem, model_name, data_name, lc, vc, bvc):
    """Write the figures; returns their file names, or a note that matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], ("figures: not drawn, they need matplotlib: pip install "
                    "'nnopt_fast[plot]'")
    from ..diagnosis import plot_bias_variance_curve, plot_learning_curve, plot_validation_curve

    names = dict(model=model_name, data=data_name)
    figures = {f"{stem}_learning_curve.{args.format}": plot_learning_curve(lc, **names),
               f"{stem}_validation_curve_alpha.{args.format}": plot_validation_curve(vc,
                                                                                    **names),
               f"{stem}_bias_variance_alpha.{args.format}": plot_bias_variance_curve(bvc,
                                                                                    **names)}
    for name, fig in figures.items():
        fig.savefig(os.path.join(args.out, name), dpi=110)
    return list(figures), None


def run(args):
    """Carry out ``nnopt-fast diagnose``; returns the exit status (0)."""
    from .data import infer_task

    _check(args)
    data = _load(args)
    task, why = infer_task(data.y, args.task)
    regression = task == "regression"
    y = _targets(data, task)
    X = data.X
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"diagnose: --out: cannot create {args.out} ({one_line(exc)})") from None
    est = make_estimator(regression, args.layers, _alpha(args, len(X)), args.epochs, args.seed)
    model_name = _describe(est, args.layers)
    what = ("a regression target, standardized inside every fit" if regression
            else f"{len(np.unique(y))} classes")
    head = [f"data: {data.name}: {X.shape[0]} samples, {X.shape[1]} features, {what}",
            *[f"  {note}" for note in data.notes],
            f"  task: {task} ({why}{'; --task to choose' if args.task == 'auto' else ''})",
            f"model: {model_name}, alpha {est.get_params()[_alpha_key(est)]:g}, at most "
            f"{args.epochs} epochs per fit, behind a StandardScaler"]
    if not args.quiet:
        print("\n".join(head), file=sys.stderr)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rep, lc, vc, bvc = _run_diagnosis(args, est, X, y, regression, not args.quiet)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"diagnose: {one_line(exc)}") from None
    converged, others = _warning_lines(caught, args.quiet)
    for line in others:
        print(line, file=sys.stderr)
    stem = os.path.splitext(data.name)[0]
    files, note = _figures(args, stem, model_name, data.name, lc, vc, bvc)
    from ..diagnosis.plots import param_label

    text = "\n\n".join(filter(None, [
        "\n".join(head), str(rep), str(lc), str(vc),
        f"bias-variance over {param_label(vc.param_name)}\n{bvc}", converged,
        note or f"figures: {', '.join(files)}",
        f"total time: {time.perf_counter() - t0:.1f} s"])) + "\n"
    report = f"{stem}_report.txt"
    with open(os.path.join(args.out, report), "w", encoding="utf-8") as f:
        f.write(text)
    print(text, end="")
    print(f"wrote {', '.join([report, *files])} to {args.out}")
    return 0


def _alpha_key(est):
    from ..diagnosis._common import find_param

    return find_param(est, "alpha")

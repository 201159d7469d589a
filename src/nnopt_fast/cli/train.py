"""``nnopt-fast train``: load, split, standardize, train with ``nf.train``, report, save."""

import json
import os
import sys
import time

import numpy as np

from .options import (
    Interrupted,
    UsageError,
    add,
    add_common_options,
    add_data_options,
    add_penalty_options,
    flag_error,
    float_or_list,
    int_list,
    one_line,
    threads,
)

#: Defaults of ``nnopt-fast train``; chosen to reach >= 95% validation accuracy on the
#: digits data with every seed tried (30 seeds: 96.4% at worst) in about a second.
TRAIN_DEFAULTS = {
    "layers": (64,),
    "activation": "tanh",
    "optimizer": "adam",
    "lr": 0.001,
    "epochs": 30,
    "batch_size": 32,
    "l2": 0.0,
    "l1": 0.0,
    "l1_method": "subgradient",
    "dropout": 0.0,
    "momentum": 0.9,
    "backend": "auto",
    "seed": 0,
    "val_fraction": 0.25,
}
#: ``--lr-schedule`` names and the schedule each makes of ``--lr`` and ``--epochs``.
LR_SCHEDULES = {
    "constant": "the same rate every epoch",
    "step": "divided by 10 after each third of the epochs",
    "exponential": "multiplied by 0.01 ** (1 / epochs) every epoch: 100x smaller at the end",
    "cosine": "linear warm-up over the first tenth of the epochs, then a cosine down to 0",
    "plateau": "halved when the validation loss has not improved for 5 epochs",
    "invscaling": "scikit-learn's lr / (samples seen + 1) ** 0.5",
}
#: Patience of ``--early-stopping`` given without a number.
EARLY_STOPPING_PATIENCE = 10


def add_parser(sub):
    """Add ``train`` and its options to the subcommands ``sub``."""
    d = TRAIN_DEFAULTS
    p = sub.add_parser(
        "train", help="train an MLP on digits or a CSV / .npz of yours, report, save",
        description="Train an MLP on scikit-learn's digits data (default) or on --data "
                    "FILE: a classifier of its labels or a regressor of its target "
                    "(--task), on standardized features, with a held-out validation split "
                    "(stratified for classes), and print the train and validation scores. "
                    "--save writes a model file for `nnopt-fast predict`.")
    add_data_options(p, (".csv (the target in the last column, or --label-column) or .npz "
                         "with arrays X and y", "scikit-learn's load_digits"))
    add(p, "--task", choices=["auto", "classification", "regression"], default="auto",
        help="auto: regression for targets with fractional parts, or integers with more "
             "than 20 distinct values and more than one per 20 rows; classes otherwise")
    add(p, "--layers", type=int_list, default=d["layers"], metavar="SIZES",
        help="hidden layer sizes, comma-separated, e.g. 64,32 ('none': no hidden layer)")
    add(p, "--activation", default=d["activation"],
        choices=["tanh", "relu", "logistic", "identity"], help="hidden units")
    add(p, "--optimizer", default=d["optimizer"],
        choices=["sgd", "momentum", "nesterov", "adam"], help="gradient descent variant")
    add(p, "--lr", type=float, default=d["lr"], help="learning rate")
    add(p, "--lr-schedule", choices=list(LR_SCHEDULES), default="constant",
        help="how the rate changes: " + "; ".join(f"{k}: {v}" for k, v in
                                                   LR_SCHEDULES.items()))
    add(p, "--momentum", type=float, default=d["momentum"],
        help="mu of the momentum and nesterov optimizers")
    add_common_options(p, seed_help="seeds the split, the initial weights, the shuffling "
                                    "and dropout",
                       epochs_default=d["epochs"], epochs_help="passes over the training rows")
    add(p, "--batch-size", default=d["batch_size"], metavar="N",
        help="rows per step: 1 is stochastic, 'all' is batch gradient descent")
    add_penalty_options(p, {
        "l2": ("", d["l2"]),
        "alpha": ("; given, it is converted to --l2 ALPHA*m/B, which takes the same step "
                  "on every full batch", "not set")})
    add(p, "--l1", type=float, default=d["l1"],
        help="lambda_1 of the penalty lambda_1/(2m) sum |W|")
    add(p, "--l1-method", default=d["l1_method"], choices=["subgradient", "proximal"],
        help="proximal soft-thresholds after every step: exact zeros")
    add(p, "--dropout", type=float_or_list, default=d["dropout"], metavar="P",
        help="drop probability of hidden units (one value, or one per hidden layer)")
    add(p, "--early-stopping", type=int, nargs="?", const=EARLY_STOPPING_PATIENCE,
        metavar="PATIENCE", shown="off",
        help=f"stop when the validation loss has not improved for PATIENCE epochs "
             f"({EARLY_STOPPING_PATIENCE} if not given) and keep the best epoch's weights")
    add(p, "--backend", default=d["backend"], choices=["auto", "cython", "numba", "numpy"],
        help="compiled kernels to train with")
    add(p, "--threads", type=threads, metavar="N", shown="all available cores",
        help="threads for training ('all' or -1: every core this process may use); how "
             "many a run really uses is nf.train's measured rule (small steps keep to one)")
    add(p, "--val-fraction", type=float, default=d["val_fraction"], metavar="F",
        help="fraction of the samples held out for validation")
    add(p, "--save", metavar="MODEL", shown="not saved",
        help="write the trained model (network, scaling, labels) to this file, e.g. m.npz")
    add(p, "--history", metavar="FILE", shown="not written",
        help="write the per-epoch history (loss, val_loss, val_score, lr, epoch_time) as "
             ".csv or .json")
    add(p, "--quiet", action="store_true", help="no per-epoch progress")
    p.set_defaults(func=run)


def _batch_size(text):
    if str(text).lower() in ("all", "none", "full"):
        return None
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"train: --batch-size must be an integer or 'all', "
                         f"got {text!r}") from None


def _check_output_paths(args):
    """Refuse an unwritable --save or --history before training, not after."""
    for flag, path in (("--save", args.save), ("--history", args.history)):
        if path is None:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise UsageError(f"train: {flag}: no such directory: {folder}")
    if args.history is not None and os.path.splitext(args.history)[1].lower() not in (
            ".csv", ".json"):
        raise UsageError(f"train: --history: expected a .csv or .json file name, got "
                         f"{args.history!r}")


def _load(args):
    from .data import Dataset, load_data

    if args.data is None:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return Dataset(X.astype(np.float64), y, "load_digits")
    return load_data(args.data, args.header, args.label_column)


def _prepare(args):
    """Load, encode, split and standardize the data; a dict of arrays and descriptions."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from .data import encode_labels, infer_task

    data = _load(args)
    task, why = infer_task(data.y, args.task)
    prep = {"data": data, "task": task, "why": why, "classes": None}
    if task == "classification":
        classes, codes = encode_labels(data.y)
        if len(classes) < 2:
            raise UsageError(f"--data: {data.name}: needs at least two classes, got "
                             f"{len(classes)}")
        prep["classes"], target, stratify = classes, codes, codes
    else:
        if data.y.dtype.kind not in "biuf":
            raise UsageError(f"--data: {data.name}: --task regression needs numeric "
                             f"targets; {data.label_name} holds strings")
        target, stratify = data.y.astype(np.float64), None
    if not 0.0 < args.val_fraction < 1.0:
        raise UsageError(f"train: --val-fraction must be in (0, 1), got {args.val_fraction}")
    try:
        X_tr, X_va, y_tr, y_va = train_test_split(data.X, target, test_size=args.val_fraction,
                                                  stratify=stratify, random_state=args.seed)
    except ValueError as exc:  # too few samples of a class for a stratified split
        kind = "a stratified" if task == "classification" else "a"
        raise UsageError(f"--data: {data.name}: cannot make {kind} split "
                         f"({one_line(exc)})") from None
    # Fit on the training split only: the validation rows must not leak into the scaling.
    scaler = StandardScaler().fit(X_tr)
    prep.update(x_mean=scaler.mean_, x_scale=scaler.scale_, X_train=scaler.transform(X_tr),
                X_val=scaler.transform(X_va), y_train=y_tr, y_val=y_va, y_mean=0.0,
                y_scale=1.0)
    if task == "regression":
        y_mean, y_scale = float(y_tr.mean()), float(y_tr.std())
        y_scale = y_scale if y_scale > 0 else 1.0
        prep.update(y_mean=y_mean, y_scale=y_scale, y_train=(y_tr - y_mean) / y_scale,
                    y_val=(y_va - y_mean) / y_scale)
    return prep


def _schedule(name, lr, epochs):
    from ..train import schedules

    if name == "constant":
        return lr
    if name == "step":
        return schedules.StepDecay(lr, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "exponential":
        return schedules.ExponentialDecay(lr, gamma=0.01 ** (1.0 / epochs))
    if name == "cosine":
        return schedules.CosineDecay(lr, total_epochs=epochs, warmup_epochs=epochs // 10)
    if name == "plateau":
        return schedules.ReduceOnPlateau(lr, factor=0.5, patience=5)
    return schedules.InverseScaling(lr, power_t=0.5)


def _train_arguments(args, prep):
    """The keyword arguments of ``nf.train``, checked with its own checks and messages."""
    import nnopt_fast as nf

    from .._validation import check_scalar
    from ..kernels import get_backend
    from ..train.loop import make_config

    batch_size = _batch_size(args.batch_size)
    m = len(prep["X_train"])
    try:
        l2 = args.l2 if args.l2 is not None else 0.0
        if args.alpha is not None:
            alpha = check_scalar(args.alpha, "alpha", low=0.0)
            l2 = alpha * m / (m if batch_size is None else min(batch_size, m))
        if args.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {args.epochs}")
        check_scalar(args.lr, "lr", low=0.0, low_open=True)
        lr = _schedule(args.lr_schedule, args.lr, args.epochs)
        n_out = len(prep["classes"]) if prep["task"] == "classification" else 1
        probe = nf.MLP([prep["X_train"].shape[1], *args.layers, n_out],
                       activation=args.activation, random_state=0)
        cfg = make_config(probe, batch_size=batch_size, n_samples=m, optimizer=args.optimizer,
                          momentum=args.momentum, l2=l2, l1=args.l1, l1_method=args.l1_method,
                          dropout=args.dropout, n_threads=args.threads)
        get_backend(args.backend)
        callbacks = []
        if args.early_stopping is not None:
            callbacks.append(nf.EarlyStopping(patience=args.early_stopping))
    except (ValueError, TypeError, RuntimeError) as exc:
        # Named by nf's validation (bad hyper-parameter) or the registry (backend unavailable).
        raise flag_error(exc, "train") from None
    return dict(epochs=args.epochs, batch_size=batch_size, lr=lr, optimizer=args.optimizer,
                momentum=args.momentum, l2=l2, l1=args.l1, l1_method=args.l1_method,
                dropout=args.dropout, random_state=args.seed, backend=args.backend,
                n_threads=args.threads, callbacks=callbacks), cfg


def _threads_line(cfg, backend_name, m):
    from ..train.threads import available_cores, choose_mode

    mode = choose_mode(cfg, backend_name, m)
    used = 1 if mode == "serial" else cfg.n_threads
    how = {"serial": "steps this small keep to one thread", "blas": "threaded BLAS",
           "data": "batches split among the threads"}[mode]
    return f"threads: {used} of {available_cores()} available ({how})"


def _scores(prep, net):
    """Lines of train and validation scores, in the target's own units."""
    lines = []
    for name, X, y in (("train", prep["X_train"], prep["y_train"]),
                       ("validation", prep["X_val"], prep["y_val"])):
        pred = net.predict(X)
        if prep["task"] == "classification":
            lines.append(f"{name + ' accuracy:':<21}{np.mean(pred == y):.4f}")
            continue
        residual = (pred.astype(np.float64) - y) * prep["y_scale"]
        r2 = 1.0 - np.sum(residual ** 2) / max(np.sum((y * prep["y_scale"]
                                                       - np.mean(y * prep["y_scale"])) ** 2),
                                               np.finfo(float).tiny)
        rmse = float(np.sqrt(np.mean(residual ** 2)))
        lines.append(f"{name + ' R^2:':<21}{r2:.4f}   (RMSE {rmse:.4g})")
    return lines


def _write_history(path, hist):
    if os.path.splitext(path)[1].lower() == ".csv":
        hist.to_csv(path)
        return
    # One line per record; JSON has no NaN, so a non-finite value is written as null.
    lines = [f" {json.dumps(k)}: {json.dumps([v if np.isfinite(v) else None for v in values])}"
             for k, values in hist.to_dict().items()]
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def run(args):
    """Carry out ``nnopt-fast train``; returns the exit status."""
    import nnopt_fast as nf

    from .model import Model, save_model

    _check_output_paths(args)
    prep = _prepare(args)
    kwargs, cfg = _train_arguments(args, prep)
    data, task = prep["data"], prep["task"]
    X_tr, X_va = prep["X_train"], prep["X_val"]
    n_out = len(prep["classes"]) if task == "classification" else 1
    net = nf.MLP([X_tr.shape[1], *args.layers, n_out], activation=args.activation,
                 output="softmax" if task == "classification" else "identity",
                 random_state=args.seed)
    what = f"{n_out} classes" if task == "classification" else "a regression target"
    print(f"data: {data.name}: {len(X_tr) + len(X_va)} samples, {X_tr.shape[1]} features, "
          f"{what}; {len(X_tr)} train / {len(X_va)} validation (standardized)")
    for note in data.notes:
        print(f"  {note}")
    if args.task == "auto" and args.data is not None:
        print(f"  task: {task} ({prep['why']}; --task to choose)")
    print(f"model: {net}", flush=True)
    t0 = time.perf_counter()
    try:
        # Overflow on the way to a divergence is reported once, by DivergenceError below,
        # not as a stream of NumPy warnings from the reference kernels.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            hist = nf.train(net, X_tr, prep["y_train"], X_val=X_va, y_val=prep["y_val"],
                            verbose=not args.quiet, **kwargs)
    except nf.DivergenceError as exc:
        print(f"nnopt-fast: error: {flag_error(exc, 'train')}", file=sys.stderr)
        return 1
    except nf.TrainingInterrupted as exc:
        raise Interrupted(f"train: interrupted after {exc.history.epochs} of {args.epochs} "
                          f"epochs; nothing saved") from None
    seconds = time.perf_counter() - t0
    for line in _scores(prep, net):
        print(line)
    stopped = ""
    if hist.stopped_epoch is not None:
        kept = hist.restored_epoch or hist.stopped_epoch
        stopped = f" (early stopping: weights of epoch {kept})"
    print(f"backend: {hist.backend}, {_threads_line(cfg, hist.backend, len(X_tr))}, "
          f"optimizer: {args.optimizer}, lr: {args.lr:g} ({args.lr_schedule}), epochs: "
          f"{hist.epochs}{stopped}, final loss: {hist.loss[-1]:.4g}, time: {seconds:.2f} s")
    if args.history is not None:
        _write_history(args.history, hist)
        print(f"history: {args.history}")
    if args.save is not None:
        save_model(args.save, Model(net, task, prep["x_mean"], prep["x_scale"],
                                    None if prep["classes"] is None else list(prep["classes"]),
                                    prep["y_mean"], prep["y_scale"], data.feature_names,
                                    data.label_name, data.label_index, hist.state))
        print(f"saved: {args.save} (nnopt-fast predict {args.save} --data FILE)")
    return 0

"""``nnopt-fast predict MODEL --data FILE``: predictions of a model saved by ``train --save``."""

import csv
import sys

import numpy as np

from .data import encode_labels
from .options import UsageError, add, add_data_options, one_line


def add_parser(sub):
    """Add ``predict`` and its options to the subcommands ``sub``."""
    p = sub.add_parser(
        "predict", help="predict with a model saved by `nnopt-fast train --save`",
        description="Predict the rows of --data FILE with a model written by `nnopt-fast "
                    "train --save MODEL`: one CSV row per sample, the predicted label or "
                    "value (and, with --proba, each class's probability). The file may "
                    "hold the label column too (it is set aside, and the accuracy or R^2 "
                    "on it reported).")
    p.add_argument("model", metavar="MODEL", help="the model file of `train --save`")
    add_data_options(p, (".csv or .npz (array X) of the features the model was trained on",
                         "required"), label=False)
    add(p, "--out", metavar="FILE", shown="standard output", help="write the CSV here")
    add(p, "--proba", action="store_true",
        help="add one column of probabilities per class (classification models)")
    p.set_defaults(func=run)


def _header(model, proba):
    columns = ["prediction"]
    if proba:
        columns += [f"p({c})" for c in model.classes]
    return columns


def _rows(model, X, proba):
    pred = model.predict(X)
    if model.task == "regression":
        cells = [[f"{v:.7g}"] for v in pred]  # the float32 network's digits
    else:
        cells = [[str(v)] for v in pred]
    if proba:
        for row, p in zip(cells, model.predict_proba(X)):
            row += [f"{v:.6g}" for v in p]
    return pred, cells


def _summary(model, data, pred):
    """A line on how the predictions compare with the label column, when the file has one."""
    if data.y is None:
        return None
    if model.task == "classification":
        # The labels as training encoded them: integer-valued numbers as integers.
        truth = encode_labels(data.y)[0][encode_labels(data.y)[1]]
        hits = np.asarray([str(t) for t in truth]) == np.asarray([str(p) for p in pred])
        return f"accuracy on the labels in {data.label_name}: {np.mean(hits):.4f}"
    y = np.asarray(data.y, dtype=np.float64)
    ss = np.sum((y - y.mean()) ** 2)
    r2 = 1.0 - np.sum((y - pred) ** 2) / ss if ss > 0 else float("nan")
    return f"R^2 on the targets in {data.label_name}: {r2:.4f}"


def run(args):
    """Carry out ``nnopt-fast predict``; returns the exit status."""
    from .data import load_features
    from .model import load_model

    if args.data is None:
        raise UsageError("predict: --data FILE is required (the rows to predict)")
    model = load_model(args.model)
    if args.proba and model.task != "classification":
        raise UsageError("predict: --proba needs a classification model; "
                         f"{args.model} predicts a regression target")
    label = "last" if model.label_index is None else str(model.label_index + 1)
    data = load_features(args.data, args.header, model.n_features, model.feature_names, label)
    pred, cells = _rows(model, data.X, args.proba)
    try:
        out = sys.stdout if args.out is None else open(args.out, "w", encoding="utf-8",
                                                        newline="")
    except OSError as exc:
        raise UsageError(f"predict: --out: cannot write {args.out} ({one_line(exc)})") from None
    try:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_header(model, args.proba))
        writer.writerows(cells)
    finally:
        if out is not sys.stdout:
            out.close()
    summary = _summary(model, data, pred)
    where = "standard output" if args.out is None else args.out
    print(f"predict: {len(pred)} rows of {data.name} with {args.model} ({model.task}) -> "
          f"{where}" + (f"; {summary}" if summary else ""), file=sys.stderr)
    return 0

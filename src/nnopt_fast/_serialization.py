"""Safe save/load of fitted estimators: arrays in an .npz archive plus JSON metadata."""

import io
import json
import os
import tempfile
from numbers import Integral, Real

import numpy as np

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "save", "load"]

FORMAT_NAME = "nnopt_fast.estimator"
FORMAT_VERSION = 1
_META_KEY = "__meta__"
_KINDS = ("MLPClassifier", "MLPRegressor")
# Fitted attributes that are plain numbers, strings, lists of numbers or None.
_SCALAR_ATTRS = ("loss_", "best_loss_", "loss_curve_", "validation_scores_",
                 "validation_loss_curve_", "best_validation_score_", "t_", "n_iter_",
                 "n_layers_", "n_outputs_", "out_activation_", "n_features_in_", "backend_")

# Private training state, so that a loaded estimator continues (warm_start, partial_fit)
# exactly like the one that was saved.
_PRIVATE_ATTRS = ("_no_improvement_count", "_dropout_seed", "_dropout_step")


class ModelFileError(ValueError):
    """A model file is corrupted, truncated, of another kind or of an unknown version."""


def _jsonable(value):
    """A JSON-safe copy of a parameter or attribute value; raises TypeError otherwise."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        v = float(value)
        # JSON has no inf/nan: spell them as strings, decoded by _from_json.
        return v if np.isfinite(v) else repr(v)
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    raise TypeError(f"cannot store a value of type {type(value).__name__} as JSON")


def _from_json(value):
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _labels_to_array(classes):
    """classes_ as an array np.load can read without pickle, plus how to restore it."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "biuf":
        return classes, "native"
    if classes.dtype.kind == "U":
        return classes, "native"
    if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes):
        return classes.astype(str), "object_str"
    raise TypeError(
        f"classes_ of dtype {classes.dtype} (labels such as {classes[:3].tolist()!r}) cannot "
        f"be stored without pickle; use labels that are numbers or strings, or pickle/joblib"
    )


def save(est, path):
    """Write a fitted MLPClassifier / MLPRegressor to ``path`` (see ``est.save``)."""
    from sklearn.utils.validation import check_is_fitted

    kind = type(est).__name__
    if kind not in _KINDS:
        raise TypeError(f"save expects an nnopt_fast MLPClassifier or MLPRegressor, got {kind}")
    check_is_fitted(est)
    params = {}
    for name, value in est.get_params(deep=False).items():
        if name == "random_state" and not (value is None or isinstance(value, Integral)):
            # A RandomState object is live state, not a parameter value JSON can hold.
            value = None
        params[name] = _jsonable(value)
    coefs = [np.asarray(W) for W in est.coefs_]
    dtype = coefs[0].dtype
    arrays = {}
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        arrays[f"coef_{i}"] = np.ascontiguousarray(W, dtype=dtype)
        arrays[f"intercept_{i}"] = np.ascontiguousarray(b, dtype=dtype)
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "class": kind,
        "params": params,
        "dtype": dtype.name,
        "n_layers": len(coefs),
        "layer_shapes": [list(W.shape) for W in coefs],
        "attributes": {a: _jsonable(getattr(est, a)) for a in _SCALAR_ATTRS if hasattr(est, a)},
    }
    meta["training_state"] = {a: _jsonable(getattr(est, a)) for a in _PRIVATE_ATTRS
                              if hasattr(est, a)}
    if getattr(est, "_best_params", None) is not None:
        arrays["best_params"] = np.ascontiguousarray(est._best_params)
    opt = getattr(est, "_optimizer", None)
    if opt is not None:
        meta["optimizer"] = {"kind": opt.kind, "learning_rate": opt.learning_rate, "t": opt.t}
        for name in ("velocity", "m", "v"):
            if getattr(opt, name) is not None:
                arrays[f"optimizer_{name}"] = np.ascontiguousarray(getattr(opt, name))
    if hasattr(est, "feature_names_in_"):
        meta["feature_names_in"] = [str(f) for f in est.feature_names_in_]
    if kind == "MLPClassifier":
        arrays["classes"], meta["classes_kind"] = _labels_to_array(est.classes_)
        meta["y_type"] = est._label_binarizer.y_type_
    arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # Write to a temporary file and rename, so a crash never leaves a half-written model.
    fd, tmp = tempfile.mkstemp(prefix=".nnopt_", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path):
    """All arrays of the archive at ``path``; every read problem becomes ModelFileError."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(b"PK"):
        raise ModelFileError(f"{path!s} is not an nnopt_fast model file (not an .npz archive)")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile, zlib, npy-header and pickle refusals alike
        raise ModelFileError(f"{path!s} is corrupted or truncated: "
                             f"{type(exc).__name__}: {exc}") from None
    for name, value in arrays.items():
        # np.load hands back raw bytes for a member that is not in .npy format.
        if not isinstance(value, np.ndarray) or value.dtype.hasobject:
            raise ModelFileError(f"{path!s} is not an nnopt_fast model file "
                                 f"(entry {name!r} is not a plain array)")
    return arrays


def load(path):
    """Load an estimator written by ``est.save(path)``.

    Only arrays and JSON are read (``np.load(..., allow_pickle=False)``): loading never
    executes code from the file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    MLPClassifier or MLPRegressor

    Raises
    ------
    ModelFileError
        (a ``ValueError``) when the file is corrupted, truncated, not an nnopt_fast model,
        of an unknown format version, or inconsistent.
    """
    from sklearn.preprocessing import LabelBinarizer

    from . import estimators

    path = os.fspath(path)
    arrays = _read(path)
    if _META_KEY not in arrays:
        raise ModelFileError(f"{path} is an .npz archive but not an nnopt_fast model file "
                             f"(no {_META_KEY} entry)")
    try:
        meta = json.loads(arrays.pop(_META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path} has unreadable metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an nnopt_fast estimator file")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path} has format version {version!r}; this nnopt_fast reads "
                             f"version {FORMAT_VERSION}. Re-save it with the matching version")
    kind = meta.get("class")
    if kind not in _KINDS:
        raise ModelFileError(f"{path} holds a {kind!r}; expected one of {_KINDS}")
    try:
        return _rebuild(getattr(estimators, kind), meta, arrays, LabelBinarizer, estimators)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ModelFileError(f"{path} is inconsistent: {type(exc).__name__}: {exc}") from None


def _flat(arr, n, dtype, name, allow_empty=False):
    if arr.dtype != dtype or arr.ndim != 1 or arr.size not in ((0, n) if allow_empty else (n,)):
        raise ModelFileError(f"{name} has shape {arr.shape} and dtype {arr.dtype}; expected "
                             f"({n},) {dtype}")
    return arr.copy()


def _rebuild(cls, meta, arrays, LabelBinarizer, estimators):
    params = {k: _from_json(v) for k, v in meta["params"].items()}
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    if isinstance(params.get("dropout"), list):
        params["dropout"] = tuple(params["dropout"])
    est = cls(**params)
    dtype = np.dtype(meta["dtype"])
    if dtype not in (np.float32, np.float64):
        raise ModelFileError(f"unsupported dtype {dtype}")
    n_layers = int(meta["n_layers"])
    coefs, intercepts = [], []
    for i in range(n_layers):
        W, b = arrays[f"coef_{i}"], arrays[f"intercept_{i}"]
        if (W.dtype != dtype or b.dtype != dtype or W.ndim != 2
                or list(W.shape) != list(meta["layer_shapes"][i]) or b.shape != (W.shape[1],)
                or (i and W.shape[0] != coefs[-1].shape[1])):
            raise ModelFileError(f"layer {i} has arrays of unexpected shape or dtype")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ModelFileError(f"layer {i} holds NaN or infinite weights")
        coefs.append(W)
        intercepts.append(b)
    est.coefs_, est.intercepts_ = coefs, intercepts
    for name, value in meta["attributes"].items():
        setattr(est, name, _from_json(value))
    for name, value in meta.get("training_state", {}).items():
        if name in _PRIVATE_ATTRS:
            setattr(est, name, value)
    n_params = sum(W.size + b.size for W, b in zip(coefs, intercepts))
    if "best_params" in arrays:
        est._best_params = _flat(arrays["best_params"], n_params, dtype, "best_params")
    if "optimizer" in meta:
        opt = estimators._OptimizerState(meta["optimizer"]["kind"],
                                         meta["optimizer"]["learning_rate"])
        opt.t = int(meta["optimizer"]["t"])
        for name in ("velocity", "m", "v"):
            key = f"optimizer_{name}"
            if key in arrays:
                setattr(opt, name, _flat(arrays[key], n_params, dtype, key, allow_empty=True))
        est._optimizer = opt
    if "feature_names_in" in meta:
        est.feature_names_in_ = np.asarray(meta["feature_names_in"], dtype=object)
    if est.n_layers_ != n_layers + 1 or est.n_features_in_ != coefs[0].shape[0]:
        raise ModelFileError("layer count or feature count disagrees with the arrays")
    if cls.__name__ == "MLPClassifier":
        classes = arrays["classes"]
        if meta["classes_kind"] == "object_str":
            classes = classes.astype(object)
        lb = LabelBinarizer()
        if meta["y_type"] == "multilabel-indicator":
            lb.fit(np.eye(len(classes), dtype=int))
        else:
            lb.fit(classes)
        if lb.y_type_ != meta["y_type"] or not np.array_equal(lb.classes_, classes):
            raise ModelFileError("stored labels do not rebuild the saved label encoding")
        est._label_binarizer = lb
        est.classes_ = lb.classes_
    return est

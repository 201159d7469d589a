"""nnopt_fast's own file of one estimator: arrays in an .npz archive plus JSON metadata."""

import contextlib
import json
import re
from numbers import Integral, Real

import numpy as np

from ..train.state import OptimizerState
from ._errors import ModelFileError
from ._files import open_zip, read_npy_member, write_atomic
from ._state import SCALARS, TRAINING
from ._versions import versions

FORMAT_NAME = "nnopt_fast.estimator"
#: 1: nnopt_fast 0.1. 2: adds the version stamp, ``n_classes`` and single-class targets.
FORMAT_VERSION = 2
_META = "__meta__.npy"
KINDS = ("MLPClassifier", "MLPRegressor")
#: The metadata's largest allowed size (it grows with feature names and loss curves).
META_LIMIT = 64 << 20
#: Labels longer than this many characters are refused when loading.
MAX_LABEL_CHARS = 65536
_MEMBER = re.compile(r"(coef_\d+|intercept_\d+|best_params|optimizer_(velocity|m|v)|classes)"
                     r"\.npy")


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
    if isinstance(value, dict):
        # Keys may be numbers (class_weight): keep them typed, as pairs.
        return {"__items__": [[_jsonable(k), _jsonable(v)] for k, v in value.items()]}
    raise TypeError(f"cannot store a value of type {type(value).__name__} as JSON")


def _from_json(value):
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        return {_from_json(k): _from_json(v) for k, v in value["__items__"]}
    return value


def _labels_to_array(classes):
    """classes_ as an array np.load can read without pickle, plus how to restore it."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "biufU":
        return classes, "native"
    if classes.dtype.kind == "O" and all(isinstance(c, str) for c in classes):
        return classes.astype(str), "object_str"
    raise TypeError(
        f"classes_ of dtype {classes.dtype} (labels such as {classes[:3].tolist()!r}) cannot "
        f"be stored without pickle; use labels that are numbers or strings, or pickle/joblib"
    )


def write(est, path):
    """Write a fitted MLPClassifier or MLPRegressor to ``path`` (see ``est.save``)."""
    kind = type(est).__name__
    if kind not in KINDS:
        raise TypeError(f"save expects an nnopt_fast MLPClassifier or MLPRegressor, got {kind}")
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
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "class": kind,
        "versions": versions(), "params": params, "dtype": dtype.name,
        "n_layers": len(coefs), "layer_shapes": [list(W.shape) for W in coefs],
        "attributes": {a: _jsonable(getattr(est, a)) for a in SCALARS if hasattr(est, a)},
        "training_state": {a: _jsonable(getattr(est, a)) for a in TRAINING
                           if hasattr(est, a)},
    }
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
        meta["y_type"], meta["n_classes"] = est._y_type, len(est.classes_)
    arrays[_META[:-4]] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    write_atomic(path, lambda f: np.savez_compressed(f, **arrays))


def _meta(archive, infos, path):
    """The parsed metadata of an open archive (its size checked before it is read)."""
    if _META not in infos:
        raise ModelFileError(f"{path} is an .npz archive but not an nnopt_fast model file "
                             f"(no {_META[:-4]} entry)")

    def check(dtype, shape):
        if dtype != np.uint8 or len(shape) != 1 or shape[0] > META_LIMIT:
            raise ModelFileError(f"{path}: {_META[:-4]} must be at most {META_LIMIT} bytes")

    raw = read_npy_member(archive, infos[_META], check, path).tobytes()
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{path} has unreadable metadata: {type(exc).__name__}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an nnopt_fast estimator file")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{path} has format version {version!r}, which is not a version")
    if version > FORMAT_VERSION:
        wrote = meta.get("versions", {}).get("nnopt_fast", "a newer version")
        raise ModelFileError(
            f"{path} has format version {version}, written by nnopt_fast {wrote}; this "
            f"nnopt_fast reads versions 1 to {FORMAT_VERSION}. Upgrade nnopt_fast to load it")
    if meta.get("class") not in KINDS:
        raise ModelFileError(f"{path} holds a {meta.get('class')!r}; expected one of {KINDS}")
    return meta


def _expected(meta):
    """Each member's expected dtype and shape (None: checked by kind), from the metadata."""
    dtype = np.dtype(meta["dtype"])
    if dtype not in (np.float32, np.float64):
        raise ModelFileError(f"unsupported dtype {dtype}")
    shapes = [tuple(int(n) for n in s) for s in meta["layer_shapes"]]
    if len(shapes) != int(meta["n_layers"]) or not shapes:
        raise ModelFileError("layer_shapes disagrees with n_layers")
    want = {}
    for i, shape in enumerate(shapes):
        if len(shape) != 2 or min(shape) < 1:
            raise ModelFileError(f"layer {i} has unexpected shape {shape}")
        want[f"coef_{i}.npy"] = (dtype, shape)
        want[f"intercept_{i}.npy"] = (dtype, (shape[1],))
    n_params = sum(a * b + b for a, b in shapes)
    want["best_params.npy"] = (dtype, (n_params,))
    for name in ("velocity", "m", "v"):
        want[f"optimizer_{name}.npy"] = (dtype, ((0,), (n_params,)))
    if meta["class"] == "MLPClassifier":
        n_classes = meta.get("n_classes", 2 if meta["y_type"] == "binary" else shapes[-1][1])
        want["classes.npy"] = (None, (int(n_classes),))
    return want


def _member_check(name, dtype, shape_or_shapes):
    def check(got_dtype, got_shape):
        shapes = shape_or_shapes if isinstance(shape_or_shapes[0], tuple) else (shape_or_shapes,)
        if dtype is None:  # classes: numbers, or strings of bounded length
            ok = got_dtype.kind in "biuf" or (got_dtype.kind == "U"
                                             and got_dtype.itemsize <= 4 * MAX_LABEL_CHARS)
        else:
            ok = got_dtype == dtype
        if not ok or tuple(got_shape) not in shapes:
            raise ModelFileError(f"member {name} has unexpected shape or dtype: {got_dtype} "
                                 f"{tuple(got_shape)}")
    return check


def read(path):
    """Read the file at ``path``: ``(class name, state dict)``, every array checked.

    Nothing is decompressed before the member's declared size and .npy header agree with
    what the metadata implies, so a load holds at most the model's arrays once more.
    """
    with open_zip(path, "an .npz archive") as archive:
        infos = {i.filename: i for i in archive.infolist()}
        if len(infos) != len(archive.infolist()):
            raise ModelFileError(f"{path} has duplicate members")
        strangers = sorted(n for n in infos if n != _META and not _MEMBER.fullmatch(n))
        if strangers:
            raise ModelFileError(f"{path} is not an nnopt_fast model file (unexpected "
                                 f"members {strangers[:5]})")
        meta = _meta(archive, infos, path)
        with _inconsistent(path):
            want = _expected(meta)
            extra = sorted(set(infos) - set(want) - {_META})
            if extra:
                raise ModelFileError(f"members {extra} do not belong to this model")
        arrays = {name[:-4]: read_npy_member(archive, infos[name],
                                             _member_check(name, *want[name]), path)
                  for name in infos if name != _META}
    with _inconsistent(path):
        return meta["class"], _state(meta, arrays)


@contextlib.contextmanager
def _inconsistent(path):
    """Metadata that does not describe a model becomes a ModelFileError naming ``path``."""
    try:
        yield
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError,
            RecursionError) as exc:
        raise ModelFileError(f"{path} is inconsistent: {type(exc).__name__}: {exc}") from None


def _state(meta, arrays):
    """The estimator state the metadata and arrays describe (checked by the estimator)."""
    state = {k: _from_json(v) for k, v in meta["params"].items()}
    for name in ("hidden_layer_sizes", "dropout"):
        if isinstance(state.get(name), list):
            state[name] = tuple(state[name])
    n_layers = int(meta["n_layers"])
    state["coefs_"] = [arrays[f"coef_{i}"] for i in range(n_layers)]
    state["intercepts_"] = [arrays[f"intercept_{i}"] for i in range(n_layers)]
    for section, names in (("attributes", SCALARS), ("training_state", TRAINING)):
        for name, value in meta.get(section, {}).items():
            if name not in names:
                raise ModelFileError(f"unknown {section} entry {name!r}")
            state[name] = _from_json(value)
    if "best_params" in arrays:
        state["_best_params"] = arrays["best_params"]
    if "optimizer" in meta:
        opt = OptimizerState(meta["optimizer"]["kind"], meta["optimizer"]["learning_rate"])
        opt.t = meta["optimizer"]["t"]
        for name in ("velocity", "m", "v"):
            setattr(opt, name, arrays.get(f"optimizer_{name}"))
        state["_optimizer"] = opt
    if "feature_names_in" in meta:
        state["feature_names_in_"] = np.asarray(meta["feature_names_in"], dtype=object)
    if meta["class"] == "MLPClassifier":
        classes = arrays["classes"]
        state["classes_"] = classes.astype(object) if meta["classes_kind"] == "object_str" \
            else classes
        state["_y_type"] = meta["y_type"]
    return state

"""Checkpoint files of ``nf.train``: a network, its resumable state and the caller's metadata,
as arrays in an .npz plus JSON, read without executing anything from the file."""

import json
import os
import re
from typing import NamedTuple

import numpy as np

from .._serialization import ModelFileError, open_zip, read_npy_member, versions, write_atomic
from ..kernels import reference as ref
from .state import BIT_GENERATORS, OptimizerState, ResumeState

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "FORMAT_NAME"]

FORMAT_NAME = "nnopt_fast.checkpoint"
FORMAT_VERSION = 1
_META = "__meta__"
#: The largest metadata (JSON) and the largest total of the caller's arrays read back.
META_LIMIT = 16 << 20
ARRAYS_LIMIT = 256 << 20
_ARRAY_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
_BUFFERS = ("velocity", "m", "v")


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` reads.

    Attributes
    ----------
    net : MLP
    state : ResumeState or None
        Pass it as ``nf.train(net, ..., state=checkpoint.state)`` to continue the run.
    metadata : dict
        The JSON metadata given to :func:`save_checkpoint`.
    arrays : dict of str to ndarray
        The arrays given to :func:`save_checkpoint`.
    """

    net: object
    state: object
    metadata: dict
    arrays: dict


def _to_json(value):
    """``value`` with arrays, numpy scalars and non-finite floats spelled for JSON."""
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return {"__float__": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a checkpoint")


def _from_json(value):
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if "__float__" in value:
            return float(value["__float__"])
        if "__ndarray__" in value:
            dtype = np.dtype(value["dtype"])
            if dtype.kind not in "biu":
                raise ModelFileError(f"an array in the metadata has dtype {dtype}")
            return np.asarray(value["__ndarray__"], dtype=dtype)
        return {k: _from_json(v) for k, v in value.items()}
    return value


def save_checkpoint(path, net, state=None, *, metadata=None, arrays=None):
    """Write ``net`` (and a resumable training state) to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Written as given (no suffix is added); ``.npz`` is customary.
    net : MLP
    state : ResumeState or None
        ``history.state`` of the run, to continue it later.
    metadata : dict or None
        JSON-able values (numbers, strings, lists, dicts) kept with the network.
    arrays : dict of str to ndarray or None
        Numeric arrays kept with the network (names: letters, digits, ``_``).
    """
    model = {"layer_sizes": list(net.layer_sizes), "activation": net.activation,
             "output": net.output, "dtype": net.dtype.name}
    members = {"params": np.ascontiguousarray(net.params)}
    described = {}
    for name, array in (arrays or {}).items():
        array = np.asarray(array)
        if not _ARRAY_NAME.fullmatch(str(name)) or array.dtype.kind not in "biuf":
            raise ValueError(f"arrays: {name!r} must be a name of letters, digits and _ "
                             f"holding a numeric array, got dtype {array.dtype}")
        members[f"array_{name}"] = np.ascontiguousarray(array)
        described[name] = {"dtype": array.dtype.str, "shape": list(array.shape)}
    saved_state = None
    if state is not None:
        opt = state.optimizer
        saved_state = {"optimizer": opt.kind, "learning_rate": opt.learning_rate, "t": opt.t,
                       "dropout_seed": state.dropout_seed, "dropout_step": state.dropout_step,
                       "epoch": state.epoch, "rng_state": state.rng_state,
                       "schedule": state.schedule}
        for name in _BUFFERS:
            members[f"optimizer_{name}"] = np.ascontiguousarray(getattr(opt, name))
    meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "versions": versions(),
            "model": model, "state": saved_state, "metadata": metadata or {},
            "arrays": described}
    members[_META] = np.frombuffer(json.dumps(_to_json(meta)).encode("utf-8"), np.uint8)
    write_atomic(path, lambda f: np.savez_compressed(f, **members))


def load_checkpoint(path):
    """Read a file written by :func:`save_checkpoint` (or ``ModelCheckpoint``).

    Every array is checked against the metadata (dtype, shape, finite values) before it
    is used, and its declared size before it is decompressed.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Checkpoint

    Raises
    ------
    ModelFileError
        (a ``ValueError``) for a file that is not a checkpoint, is corrupted or
        truncated, of a newer format version, or inconsistent.
    """
    path = os.fspath(path)
    with open_zip(path, "an .npz checkpoint") as archive:
        infos = {i.filename: i for i in archive.infolist()}
        meta = _read_meta(archive, infos, path)
        try:
            model, described, want = _expected_members(meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path} is inconsistent: {type(exc).__name__}: {exc}") from None
        strangers = sorted(set(infos) - set(want) - {_META + ".npy"})
        if strangers:
            raise ModelFileError(f"{path} holds members that are not part of a checkpoint: "
                                 f"{strangers[:5]}")
        arrays = {}
        for member, (dtype, shape) in want.items():
            if member not in infos:
                raise ModelFileError(f"{path} lacks the member {member}")
            arrays[member[:-4]] = read_npy_member(archive, infos[member],
                                                  _member_check(member, dtype, shape), path)
    try:
        return _assemble(model, meta, described, arrays)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise ModelFileError(f"{path}: {exc}") from None
        raise ModelFileError(f"{path} is inconsistent: {type(exc).__name__}: {exc}") from None


def _read_meta(archive, infos, path):
    info = infos.get(_META + ".npy")
    if info is None:
        raise ModelFileError(f"{path} is not an nnopt_fast checkpoint (no {_META} member)")
    raw = read_npy_member(archive, info, _member_check(_META, np.uint8, "bytes"), path)
    try:
        meta = _from_json(json.loads(raw.tobytes().decode("utf-8")))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path} has unreadable metadata: {type(exc).__name__}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not an nnopt_fast checkpoint")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) \
            or not 1 <= version <= FORMAT_VERSION:
        raise ModelFileError(f"{path} has checkpoint format version {version!r}; this "
                             f"nnopt_fast reads versions 1 to {FORMAT_VERSION} (a newer "
                             f"nnopt_fast reads newer ones)")
    return meta


def _member_check(member, dtype, shape):
    def check(got_dtype, got_shape):
        if shape == "bytes":
            ok = got_dtype == dtype and len(got_shape) == 1 and got_shape[0] <= META_LIMIT
        else:
            shapes = shape if isinstance(shape, list) else [shape]
            ok = got_dtype == dtype and tuple(got_shape) in shapes
        if not ok:
            raise ModelFileError(f"member {member} has unexpected dtype or shape: "
                                 f"{got_dtype} {tuple(got_shape)}")
    return check


def _expected_members(meta):
    """The model's description, the caller's arrays and each member's (dtype, shape)."""
    model = meta["model"]
    sizes = [int(s) for s in model["layer_sizes"]]
    if len(sizes) < 2 or min(sizes) < 1 or any(not isinstance(s, int) for s in
                                                 model["layer_sizes"]):
        raise ValueError(f"layer_sizes {model['layer_sizes']!r} are not a network's")
    if model["activation"] not in ref.ACTIVATIONS or model["output"] not in ref.OUTPUTS:
        raise ValueError(f"unknown activation or output {model['activation']!r}, "
                         f"{model['output']!r}")
    dtype = np.dtype(model["dtype"])
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"unsupported dtype {dtype}")
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    want = {"params.npy": (dtype, (n_params,))}
    if meta["state"] is not None:
        for name in _BUFFERS:
            want[f"optimizer_{name}.npy"] = (dtype, [(0,), (n_params,)])
    described, total = {}, 0
    for name, desc in meta["arrays"].items():
        array_dtype, shape = np.dtype(desc["dtype"]), tuple(int(n) for n in desc["shape"])
        if not _ARRAY_NAME.fullmatch(name) or array_dtype.kind not in "biuf":
            raise ValueError(f"array {name!r} of dtype {array_dtype}")
        total += int(np.prod(shape, dtype=np.int64)) * array_dtype.itemsize
        if total > ARRAYS_LIMIT:
            raise ValueError(f"its arrays declare more than {ARRAYS_LIMIT} bytes")
        want[f"array_{name}.npy"] = (array_dtype, shape)
        described[name] = desc
    return model, described, want


def _assemble(model, meta, described, arrays):
    from ..model.mlp import MLP

    params = arrays["params"]
    if not np.isfinite(params).all():
        raise ModelFileError("the network's parameters hold NaN or infinite values")
    net = MLP.__new__(MLP)
    net.__setstate__({"layer_sizes": model["layer_sizes"], "activation": model["activation"],
                      "output": model["output"], "dtype": model["dtype"], "params": params})
    state = None if meta["state"] is None else _state(meta["state"], arrays, net)
    extra = {name: arrays[f"array_{name}"] for name in described}
    metadata = meta["metadata"]
    if not isinstance(metadata, dict):
        raise ModelFileError("its metadata is not a dict")
    return Checkpoint(net, state, metadata, extra)


def _count(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelFileError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def _state(saved, arrays, net):
    kind = saved["optimizer"]
    if kind not in ref.OPTIMIZERS:
        raise ModelFileError(f"unknown optimizer {kind!r}")
    lr = saved["learning_rate"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not np.isfinite(lr) \
            or lr < 0:
        raise ModelFileError(f"learning_rate must be a finite number >= 0, got {lr!r}")
    opt = OptimizerState(kind, lr)
    opt.t = _count(saved["t"], "t")
    needed = {"velocity": kind in ("momentum", "nesterov"), "m": kind == "adam",
              "v": kind == "adam"}
    for name in _BUFFERS:
        buf = arrays[f"optimizer_{name}"]
        if (buf.size == net.n_params) != needed[name] or not np.isfinite(buf).all():
            raise ModelFileError(f"the optimizer's {name} does not fit optimizer {kind!r}")
        setattr(opt, name, buf)
    rng_state = saved["rng_state"]
    if not isinstance(rng_state, dict) or rng_state.get("bit_generator") not in BIT_GENERATORS:
        raise ModelFileError("the shuffling state names no known bit generator")
    schedule = saved["schedule"]
    if schedule is not None and not (isinstance(schedule, dict)
                                     and isinstance(schedule.get("class"), str)
                                     and isinstance(schedule.get("state"), dict)):
        raise ModelFileError("the schedule's state is malformed")
    state = ResumeState(opt, _count(saved["dropout_seed"], "dropout_seed"),
                        _count(saved["dropout_step"], "dropout_step"),
                        _count(saved["epoch"], "epoch"), rng_state, schedule, net.n_params,
                        net.dtype.name)
    try:
        state.make_rng()  # numpy checks the bit generator's state
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(f"the shuffling state is malformed: {exc}") from None
    return state

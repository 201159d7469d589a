"""The kernel registry: one place that chooses a backend by name."""

import importlib
import warnings

from . import reference

__all__ = ["BACKENDS", "get_backend", "backends", "reference"]

#: Backends in the order ``backend="auto"`` tries them.
BACKENDS = ("cython", "numba", "numpy")

_MODULES = {
    "cython": "nnopt_fast.kernels.cython_backend",
    "numba": "nnopt_fast.kernels.numba",
    "numpy": "nnopt_fast.kernels.reference",
}
_cache = {}


def _load(name):
    """Import a backend module once; remember the failure reason if it cannot load."""
    if name not in _cache:
        try:
            _cache[name] = (importlib.import_module(_MODULES[name]), None)
        except Exception as exc:  # ImportError, or a compiler/JIT failure at import
            _cache[name] = (None, f"{type(exc).__name__}: {exc}")
    return _cache[name]


def get_backend(name="auto"):
    """Return the backend module for ``name``.

    Every backend module exposes the same kernels as :mod:`nnopt_fast.kernels.reference`
    and ``run_epoch(cfg, state, X, T, sw, perm, lr, step0)``.

    Parameters
    ----------
    name : {"auto", "cython", "numba", "numpy"}
        ``"auto"`` takes the first available of cython, numba, numpy.

    Raises
    ------
    ValueError
        For an unknown name.
    RuntimeError
        When the named backend is not available here; the message says why.
    """
    if name == "auto":
        for cand in BACKENDS:
            mod, _ = _load(cand)
            if mod is not None:
                if cand != BACKENDS[0]:
                    _warn_fallback(cand)
                return mod
    if name not in _MODULES:
        raise ValueError(f"backend must be one of {['auto', *BACKENDS]}, got {name!r}")
    mod, why = _load(name)
    if mod is None:
        raise RuntimeError(f"backend {name!r} is not available: {why}")
    return mod


_warned = set()


def _warn_fallback(used):
    """Say once per process that ``backend="auto"`` runs without the compiled extension."""
    if used not in _warned:
        _warned.add(used)
        warnings.warn(
            f"nnopt_fast's compiled extension is not available ({_cache['cython'][1]}); "
            f"backend='auto' uses the slower {used!r} backend",
            RuntimeWarning,
            stacklevel=3,
        )


def backends():
    """Which backends are available, and why not when one is not.

    Returns
    -------
    dict
        ``{name: {"available": bool, "reason": str or None, ...}}`` in ``auto`` order;
        an available backend may add details from its ``backend_info()``.
    """
    out = {}
    for name in BACKENDS:
        mod, why = _load(name)
        entry = {"available": mod is not None, "reason": why}
        if mod is not None and hasattr(mod, "backend_info"):
            entry.update(mod.backend_info())
        out[name] = entry
    return out

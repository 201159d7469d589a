"""The package's one Numba decorator, with an on-disk cache that can never break import."""

import contextlib
import os
import tempfile

import numba
import numba.extending
from numba.core import config as _numba_config

__all__ = ["FASTMATH", "jit", "choose_cache_dir", "cache_info"]

#: LLVM fast-math flags of every kernel: reassociation only, which lets reductions (loss
#: and penalty sums) vectorize. Not ``contract``: fusing ``V*mu - lr*g`` into one FMA
#: rounds once where NumPy rounds twice, a systematic one-ulp difference per update that
#: the L1 subgradient's sign flips amplify to 1e-3 in float32 parity runs. Never
#: ``nnan``/``ninf``: with them LLVM may fold away the ``isfinite`` test that turns a
#: diverging batch into status 1.
FASTMATH = frozenset({"reassoc"})

#: Environment variable that turns the on-disk cache off ("0", "false", "no", "off").
CACHE_ENV = "NNOPT_FAST_NUMBA_CACHE"


def _writable_dir(path):
    """True if ``path`` exists or can be created, and a file can be written in it.

    The same test Numba's cache locators run, so that our answer agrees with theirs.
    """
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _fallback_dirs(env):
    """User-level cache directories to try when Numba's own choices are not writable."""
    dirs = []
    xdg = env.get("XDG_CACHE_HOME")
    home = os.path.expanduser("~")
    if xdg:
        dirs.append(os.path.join(xdg, "nnopt_fast", "numba"))
    if home and home != "~":
        dirs.append(os.path.join(home, ".cache", "nnopt_fast", "numba"))
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    dirs.append(os.path.join(tempfile.gettempdir(), f"nnopt_fast-numba-{uid}"))
    return dirs


def choose_cache_dir(module_file, env=None):
    """Decide where the compiled kernels of ``module_file`` are cached.

    Numba itself tries, in order, ``NUMBA_CACHE_DIR``, the ``__pycache__`` next to the
    source, and its user-wide directory; when none is writable, ``cache=True`` raises at
    decoration time, i.e. at import. This function makes the same checks first and, when
    Numba would fail, picks a directory of ours (``$XDG_CACHE_HOME/nnopt_fast/numba``,
    ``~/.cache/nnopt_fast/numba``, then a per-user temporary directory), or no cache.

    Parameters
    ----------
    module_file : str
        Path of the module whose functions are decorated.
    env : mapping or None
        Environment variables (default ``os.environ``).

    Returns
    -------
    enabled : bool
        Whether to pass ``cache=True``.
    directory : str or None
        Where the cache lives.
    source : str
        ``"NUMBA_CACHE_DIR"``, ``"in-tree"``, ``"numba user dir"``, ``"fallback"`` (a
        directory Numba must be told about), or why caching is off.
    """
    env = os.environ if env is None else env
    if env.get(CACHE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False, None, f"disabled by {CACHE_ENV}"
    user_dir = env.get("NUMBA_CACHE_DIR", "")
    if user_dir and _writable_dir(user_dir):
        return True, user_dir, "NUMBA_CACHE_DIR"
    in_tree = os.path.join(os.path.dirname(os.path.abspath(module_file)), "__pycache__")
    if _writable_dir(in_tree):
        return True, in_tree, "in-tree"
    from numba.misc.appdirs import AppDirs

    numba_user = AppDirs(appname="numba", appauthor=False).user_cache_dir
    if _writable_dir(numba_user):
        return True, numba_user, "numba user dir"
    for d in _fallback_dirs(env):
        if _writable_dir(d):
            return True, d, "fallback"
    return False, None, "no writable cache directory: compiled at each start"


#: Where the Numba backend's kernels live (their cache is what :func:`cache_info` reports).
KERNELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "numba")
_choices = {}


def _cache_choice(module_file):
    """:func:`choose_cache_dir` of ``module_file``, decided once per source directory (the
    in-tree cache of Numba is the ``__pycache__`` beside each source file)."""
    key = os.path.dirname(os.path.abspath(module_file))
    if key not in _choices:
        _choices[key] = choose_cache_dir(module_file)
    return _choices[key]


@contextlib.contextmanager
def _cache_dir_override(directory, source):
    """Point Numba at our fallback ``directory`` while a function is decorated.

    Numba fixes a function's cache path when it is decorated, so the global
    ``numba.config.CACHE_DIR`` is changed only for that moment and restored after,
    leaving other libraries' caching untouched.
    """
    if source != "fallback":
        yield
        return
    saved = _numba_config.CACHE_DIR
    _numba_config.CACHE_DIR = directory
    try:
        yield
    finally:
        _numba_config.CACHE_DIR = saved


def jit(fn=None, *, helper=False, inline=False):
    """Compile ``fn`` with the package's Numba options (the one decorator of every kernel).

    ``nogil=True`` so kernels run with the GIL released, the fast-math flags of
    :data:`FASTMATH`, ``error_model="numpy"`` (a float division by zero gives inf or NaN
    instead of a per-division check that blocks vectorization), and the on-disk cache
    chosen by :func:`choose_cache_dir` for the directory of ``fn``'s source. Compilation
    happens at the first call of each type signature, never per call.

    ``@jit(helper=True)`` is for small scalar or view helpers called only from compiled
    code: they are compiled as part of their callers (``register_jitable``), without a
    dispatcher, CPython wrapper or cache file of their own, which is most of the
    first-call compile time of a many-function module. From Python they run as plain
    Python. ``@jit(helper=True, inline=True)`` inlines such a helper into its callers'
    Numba IR (``inline="always"``), for accessors that take the epoch plan or another
    tuple of arrays: a call boundary would take and release a reference to every array
    of the tuple (two atomic operations each), a measurable cost per batch.
    """
    if fn is None:
        return lambda f: jit(f, helper=helper, inline=inline)
    opts = dict(nogil=True, fastmath=set(FASTMATH), error_model="numpy")
    if helper:
        return numba.extending.register_jitable(inline="always" if inline else "never",
                                                **opts)(fn)
    enabled, directory, source = _cache_choice(fn.__code__.co_filename)
    if enabled:
        with _cache_dir_override(directory, source):
            try:
                return numba.njit(cache=True, **opts)(fn)
            except RuntimeError:
                # The directory went away between the check and now: compile uncached
                # rather than fail the import.
                pass
    return numba.njit(cache=False, **opts)(fn)


def cache_info():
    """Where the Numba backend's compiled kernels are cached.

    Returns
    -------
    dict
        ``{"cache": bool, "cache_dir": str or None, "cache_source": str}`` (see
        :func:`choose_cache_dir`).
    """
    enabled, directory, source = _cache_choice(os.path.join(KERNELS_DIR, "__init__.py"))
    return {"cache": enabled, "cache_dir": directory, "cache_source": source}

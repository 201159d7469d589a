"""Writing model files atomically, and reading zip members within declared bounds."""

import hashlib
import os
import re
import secrets
import socket
import time
import zipfile

import numpy as np

from ._errors import ModelFileError

#: Temporary files of a save are ``.nnopt-save.<host>.<pid>.<token>.tmp`` in the target's
#: folder, so that the next save there can tell its own kind of orphan from other files.
_TEMP_PATTERN = re.compile(r"\.nnopt-save\.([0-9a-f]{8})\.(\d+)\.[0-9a-f]{8}\.tmp")
#: What nnopt_fast 0.1 named them (``tempfile.mkstemp(prefix=".nnopt_", suffix=".tmp")``).
_OLD_TEMP_PATTERN = re.compile(r"\.nnopt_[A-Za-z0-9_]{8}\.tmp")
#: A temporary file whose writer cannot be asked (another host, Windows, old names) is an
#: orphan once it is this old: no save takes a day.
_ORPHAN_AGE = 24 * 3600.0
#: The largest .npy header read before its array is checked (numpy writes 128 bytes,
#: or a multiple of 64 for very long shapes).
_NPY_HEADER_LIMIT = 65536


def _host_tag():
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _writer_gone(host, pid, path):
    """Whether the save that wrote the temporary file ``path`` has ended."""
    if host == _host_tag() and os.name == "posix":
        if pid == os.getpid():
            return False  # a save of this process that is still writing
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    try:
        return time.time() - os.path.getmtime(path) > _ORPHAN_AGE
    except OSError:
        return False


def remove_orphans(directory):
    """Delete the temporary files left in ``directory`` by saves that were killed."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        path = os.path.join(directory, name)
        match = _TEMP_PATTERN.fullmatch(name)
        if match:
            gone = _writer_gone(match[1], int(match[2]), path)
        elif _OLD_TEMP_PATTERN.fullmatch(name):
            gone = _writer_gone(None, None, path)
        else:
            continue
        if gone:
            try:
                os.unlink(path)
            except OSError:
                pass


def write_atomic(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    A crash or signal never leaves a half-written ``path``; the temporary files of
    killed saves in that folder are removed first.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    remove_orphans(directory)
    tmp = os.path.join(directory, f".nnopt-save.{_host_tag()}.{os.getpid()}."
                                  f"{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def open_zip(path, what):
    """``zipfile.ZipFile`` of ``path``; a file that is no zip archive is a ModelFileError."""
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{path!s} is corrupted or truncated (not readable as {what}): "
                             f"{exc}") from None
    except (OSError, EOFError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _corrupted(path, exc) from None


def read_member(archive, info, limit, path):
    """The bytes of a member whose declared size is at most ``limit``."""
    if info.file_size > limit:
        raise ModelFileError(f"{path!s}: member {info.filename!r} declares "
                             f"{info.file_size} bytes, more than the {limit} allowed")
    try:
        with archive.open(info) as f:
            return f.read(limit + 1)
    except Exception as exc:  # zlib, CRC and truncation errors alike
        raise _corrupted(path, exc) from None


def _npy_header(f, info, path):
    """(shape, fortran, dtype, header length) of an open .npy member; checks its size."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(
            f, max_header_size=_NPY_HEADER_LIMIT)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(
            f, max_header_size=_NPY_HEADER_LIMIT)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    header_len = f.tell()
    n_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if info.file_size != header_len + n_bytes:
        raise ModelFileError(
            f"{path!s}: member {info.filename!r} declares {info.file_size} bytes, but its "
            f".npy header describes {header_len + n_bytes}")
    return shape, fortran, dtype, n_bytes


def _corrupted(path, exc):
    return ModelFileError(f"{path!s} is corrupted or truncated: {type(exc).__name__}: {exc}")


def check_npy_member(archive, info, path):
    """Check that a .npy member declares exactly the size its header describes."""
    try:
        with archive.open(info) as f:
            _npy_header(f, info, path)
    except ModelFileError:
        raise
    except Exception as exc:
        raise _corrupted(path, exc) from None


def read_npy_member(archive, info, check, path):
    """Read a .npy member; ``check(dtype, shape)`` vets its header before any data is read.

    The member's declared size must be exactly its header plus the array the header
    describes, so the data read is never larger than the one array allocated for it.
    """
    try:
        with archive.open(info) as f:
            shape, fortran, dtype, n_bytes = _npy_header(f, info, path)
            if dtype.hasobject:
                raise ModelFileError(f"{path!s}: member {info.filename!r} holds objects")
            try:
                check(dtype, shape)
            except ModelFileError as exc:
                raise ModelFileError(f"{path!s}: {exc}") from None
            array = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
            flat = array.reshape(-1, order="F" if fortran else "C")
            if n_bytes and f.readinto(memoryview(flat).cast("B")) != n_bytes:
                raise ValueError("member data is shorter than its header says")
            return array
    except ModelFileError:
        raise
    except Exception as exc:
        raise _corrupted(path, exc) from None

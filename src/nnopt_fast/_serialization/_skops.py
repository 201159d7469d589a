"""Any fitted scikit-learn object (Pipelines) in skops's format, plus nnopt_fast's stamp."""

import io
import json
import os
import zipfile

from ._errors import ModelFileError
from ._files import check_npy_member, open_zip, read_member, write_atomic
from ._versions import versions

FORMAT_NAME = "nnopt_fast.skops"
FORMAT_VERSION = 1
#: The member holding the version stamp, beside skops's own ``schema.json``.
STAMP = "nnopt_fast.json"
_SCHEMA = "schema.json"
#: The largest allowed ``schema.json`` and stamp.
SCHEMA_LIMIT = 64 << 20
#: A file's members may expand to at most this multiple of the file's size (plus 1 MiB)
#: when decompressed; nnopt_fast writes them uncompressed (skops's default).
EXPANSION_LIMIT = 16


def is_skops(archive):
    """Whether an open zip archive is a skops file."""
    return _SCHEMA in archive.namelist()


def write(obj, path):
    """Write ``obj`` with skops, stamped with the versions that wrote it."""
    import skops.io

    buffer = io.BytesIO(skops.io.dumps(obj))
    stamp = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "versions": versions()}
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(STAMP, json.dumps(stamp))
    write_atomic(path, lambda f: f.write(buffer.getbuffer()))


def _check_archive(path):
    """Sizes, members and stamp of a skops file, checked before skops decompresses any."""
    with open_zip(path, "a skops archive") as archive:
        infos = archive.infolist()
        total = sum(i.file_size for i in infos)
        limit = EXPANSION_LIMIT * os.path.getsize(path) + (1 << 20)
        if total > limit:
            raise ModelFileError(f"{path}: its members declare {total} bytes, more than "
                                 f"{EXPANSION_LIMIT} times the file's size")
        for info in infos:
            if info.filename in (_SCHEMA, STAMP):
                read_member(archive, info, SCHEMA_LIMIT, path)
            elif info.filename.endswith(".npy"):
                check_npy_member(archive, info, path)
        if STAMP not in archive.namelist():
            return
        try:
            stamp = json.loads(read_member(archive, archive.getinfo(STAMP), SCHEMA_LIMIT, path))
            version = stamp["format_version"]
            wrote = stamp.get("versions", {}).get("nnopt_fast", "a newer version")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise ModelFileError(f"{path} has an unreadable {STAMP}: "
                                 f"{type(exc).__name__}") from None
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelFileError(
                f"{path} has format version {version!r}, written by nnopt_fast {wrote}; "
                f"this nnopt_fast reads versions up to {FORMAT_VERSION}. Upgrade nnopt_fast "
                f"to load it")


def read(path, trusted):
    """Load a skops file, trusting skops's defaults and the types in ``trusted``."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    _check_archive(path)
    try:
        return skops.io.load(path, trusted=trusted)
    except UntrustedTypesFoundException as exc:
        raise ModelFileError(
            f"{path} holds types nnopt_fast does not trust: {exc}. If you trust the file, "
            f"load it with skops.io.load(path, trusted=[...]) naming them") from None
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError,
            zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{path} is corrupted or not a loadable skops file: "
                             f"{type(exc).__name__}: {exc}") from None

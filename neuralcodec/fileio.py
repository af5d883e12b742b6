"""Safe file output and bounded file input.

Outputs are written to a temporary file beside the target and renamed onto it only once complete, so
an interrupted or failed write never leaves a half-written target behind nor destroys the previous one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from neuralcodec.errors import InputError, LimitExceededError

PathLike = str | os.PathLike[str]

_CHUNK_BYTES = 1 << 20
_OUTPUT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG, errno.EFBIG}
"""Write failures that are the user's environment (permissions, full disk...), reported as InputError."""


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: the target holds either its old or its new content."""
    with atomic_output(path) as temporary:
        with open(temporary, "xb") as handle:
            handle.write(data)


@contextlib.contextmanager
def atomic_output(path: PathLike) -> Iterator[Path]:
    """Yield a not-yet-existing temporary path beside ``path`` with the same suffix.

    Whatever the block writes there is fsynced, given the permissions of a newly created file (or those
    of the file it replaces; some writers, e.g. safetensors, create owner-only files) and renamed onto
    ``path`` if the block succeeds; on any exception the temporary file is removed and ``path`` is left
    untouched.
    """
    target = Path(path)
    check_output_path(target)
    temporary = target.with_name(f".{target.stem}.{secrets.token_hex(6)}.tmp{target.suffix}")
    try:
        yield temporary
        _fsync_file(temporary)
        os.chmod(temporary, _permissions_for(target))
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.errno in _OUTPUT_ERRNOS:
            raise InputError(f"cannot write {str(target)!r}: {error.strerror}") from error
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def check_output_path(target: PathLike, folder: bool = False) -> None:
    """InputError unless ``target`` can be written: its directory exists and is writable, and it is not
    ``-`` (this library never writes a file named ``-``) nor an existing directory (unless ``folder``:
    outputs that are folders of files check their own rules)."""
    target = Path(target)
    if os.fspath(target) == "-":
        raise InputError("'-' (standard output) is not supported for this output: name a file")
    if target.is_dir() and not folder:
        raise InputError(f"output {str(target)!r} is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise InputError(f"cannot write {str(target)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {str(target)!r}: directory {str(parent)!r} is not writable")


def ensure_not_same_file(input_path: PathLike, output_path: PathLike) -> None:
    """Raise InputError if writing ``output_path`` would overwrite ``input_path``."""
    if os.path.exists(input_path) and os.path.exists(output_path):
        same = os.path.samefile(input_path, output_path)
    else:
        same = _normalized(input_path) == _normalized(output_path)
    if same:
        raise InputError(f"output {os.fspath(output_path)!r} is the input file {os.fspath(input_path)!r}; refusing to overwrite it")


def read_bytes_limited(path: PathLike, max_bytes: int) -> bytes:
    """Read a whole regular file, refusing (before reading) one larger than ``max_bytes``."""
    name = os.fspath(path)
    if os.path.isdir(name):
        raise InputError(f"{name!r} is a directory, not a file")
    try:
        with open(name, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            _check_size(name, size, max_bytes)
            data = _read_at_most(handle, max_bytes + 1, first_chunk=size + 1)
    except FileNotFoundError:
        raise InputError(f"{name!r}: no such file") from None
    except OSError as exc:
        raise InputError(f"{name!r}: cannot read: {exc.strerror or exc}") from None
    _check_size(name, len(data), max_bytes)
    return data


def _read_at_most(handle: BinaryIO, limit: int, first_chunk: int) -> bytes:
    """Read until EOF or ``limit`` bytes; the first request is sized to the file, then 1 MiB chunks."""
    chunks: list[bytes] = []
    request = min(first_chunk, limit)
    while limit > 0:
        chunk = handle.read(request)
        if not chunk:
            break
        chunks.append(chunk)
        limit -= len(chunk)
        request = min(_CHUNK_BYTES, limit)
    return b"".join(chunks)


def _check_size(name: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise LimitExceededError(f"{name!r} is {size} bytes, more than the limit of {max_bytes} bytes")


def _permissions_for(target: Path) -> int:
    """Mode bits for ``target``: those of the file it replaces, else what ``open`` would create under
    the process's umask."""
    if target.is_file():
        return target.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _normalized(path: PathLike) -> str:
    return os.path.normcase(os.path.realpath(path))


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(directory: Path) -> None:
    """Persist the rename; best effort, since some platforms cannot open directories."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)

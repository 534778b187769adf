"""Files in and out: the one atomic writer, the one JSON sanitiser, checked input paths.

Every file the tool writes (law artifacts, figures, tables, run records) goes through
:func:`atomic_write`: a fresh temporary file in the destination's folder, created exclusively
(``O_CREAT | O_EXCL | O_NOFOLLOW``, so a planted symlink is never followed), written, flushed,
``fsync``'ed and ``os.replace``'d onto the destination. A reader sees the old file or the new one,
never a torn one; on any failure (full disk, permissions) the old file is untouched and the
temporary file removed.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from scaling.errors import ScalingError

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(
    os, "O_CLOEXEC", 0)


def _explain(path: Path, exc: OSError) -> str:
    reasons = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
               errno.EACCES: "permission denied", errno.EPERM: "permission denied",
               errno.EROFS: "the file system is read-only",
               errno.ENOTDIR: "a part of the path is a file, not a folder",
               errno.ENOENT: "its folder does not exist",
               errno.EISDIR: "it is a folder"}
    why = reasons.get(exc.errno or 0, exc.strerror or str(exc))
    return f"cannot write {path}: {why}; choose another output path"


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[BinaryIO], None], *,
                 sync: bool = True, mode: int = 0o644) -> Path:
    """Write ``data`` (bytes, text as UTF-8, or a callable that writes to a binary file) to ``path``
    atomically. Returns the path; raises :class:`ScalingError` naming the path and the reason."""
    path = Path(path)
    if path.is_dir():
        raise ScalingError(f"cannot write {path}: it is a folder; give a file name")
    if path.exists() and not (path.is_file() or path.is_symlink()):
        raise ScalingError(f"cannot write {path}: it is not a regular file; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ScalingError(_explain(path, OSError(
            errno.ENOTDIR if folder.exists() else errno.ENOENT, "")))
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, _FLAGS, mode)
    except OSError as exc:
        raise ScalingError(_explain(path, exc)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise ScalingError(_explain(path, exc)) from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(tmp: Path) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def to_jsonable(value: Any) -> Any:
    """Plain-JSON copy: numpy scalars/arrays -> Python, dataclasses -> dicts, tuples -> lists,
    non-finite floats -> ``None`` (JSON has no inf/NaN; e.g. an unbounded V* is ``null``)."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, payload: Any, *, indent: int | None = 1) -> Path:
    """Atomically write ``payload`` as JSON (sanitised with :func:`to_jsonable`)."""
    text = json.dumps(to_jsonable(payload), indent=indent, allow_nan=False)
    return atomic_write(path, text + "\n")


def check_input_file(path: str | os.PathLike, *, what: str = "input") -> Path:
    """The path of a readable regular file, or a :class:`ScalingError` saying what it is instead
    (missing, a folder, a FIFO or device, unreadable)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ScalingError(f"{what} {path} not found; check the path") from None
    except OSError as exc:
        raise ScalingError(f"cannot read {what} {path}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ScalingError(f"{what} {path} is a folder, not a file; give a file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise ScalingError(f"{what} {path} is not a regular file (a FIFO, socket or device); "
                           "give a file")
    if not os.access(path, os.R_OK):
        raise ScalingError(f"cannot read {what} {path}: permission denied")
    return path

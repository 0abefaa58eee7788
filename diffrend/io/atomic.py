"""Writing a file atomically: the one writer behind every output file of diffrend.

A file is written to a temporary file next to it, flushed to disk, and renamed over the
target, so readers (and a job killed half-way) only ever see the old file or the new one.
The temporary file is named ``.NAME.XXXXXXXX.tmp`` (hidden, recognisable); it is created
with mode 0666 less the umask, as ``open`` would, so outputs come out as ordinary files;
it is removed on any failure, and :func:`remove_stale_temps` cleans up after a process
that was killed before it could.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# mkstemp's alphabet and length: names of earlier versions' temporary files match too.
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_"
_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
# diffrend <= 0.x wrote checkpoints and previews through mkstemp's default names.
_LEGACY_TEMP = re.compile(r"^tmp[a-z0-9_]{8}\.(tmp|png|gif|json|html|txt)$")
_MAX_STEM = 100  # keeps the temporary name under the 255-byte limit of file names


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file name of this writer (now or in older versions)."""
    return bool(_TEMP.match(name) or _LEGACY_TEMP.match(name))


def _create_temp(path: Path) -> tuple[int, Path]:
    """Open a new temporary file next to ``path``; the umask applies to its mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        token = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        tmp = path.parent / f".{path.name[:_MAX_STEM]}.{token}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary file name for {path.name}")


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary stream whose content replaces ``path`` when the block ends without error.

    The parent folder is created if needed. On any exception (Ctrl-C included) the
    temporary file is removed and ``path`` is left as it was.

    Example::

        with atomic_open(out / "image.png") as f:
            Image.fromarray(array).save(f, format="PNG")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        f.write(data)


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete this writer's temporary files directly in ``folder`` (not in subfolders).

    Only names matching the writer's pattern (``.NAME.XXXXXXXX.tmp``, or ``tmpXXXXXXXX.EXT``
    of older versions) are touched. Call it only while no other process writes into
    ``folder`` (a job does so under the folder's lock), or a live temporary file goes too.

    Returns:
        The removed files.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


__all__ = ["atomic_open", "atomic_write_bytes", "is_temp_name", "remove_stale_temps"]

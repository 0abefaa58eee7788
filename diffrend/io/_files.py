"""Where mesh files come from and go to: paths, ``path_manager`` paths, or open streams.

PyTorch3D's loaders take a path, a ``str`` resolved through an iopath ``PathManager``, or
a file-like object; these helpers give every loader and writer here that same reach.
Writes to a path are atomic (a temporary file renamed over the target); writes to a stream
go straight into it.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch

from .atomic import atomic_write_bytes

PathOrStream = str | os.PathLike | IO


def decode_text(data: bytes | str) -> str:
    """Text of a file's bytes: UTF-8 (a leading BOM dropped), else cp1252, else latin-1.

    Decoded here rather than by ``trimesh.util.decode_text``, whose non-UTF-8 path imports
    ``charset_normalizer`` (not a dependency) and guesses; cp1252 then latin-1 always give
    a string, so a name or comment with stray bytes loads (its accents may be wrong).
    """
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def existing_file(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` after checking it is a regular file.

    Raises:
        FileNotFoundError: no such file. ValueError: not a regular file, or the name
        cannot be looked up (too long, bad characters: the OSError's text is kept).
    """
    p = Path(path)
    try:
        exists, is_file = p.exists(), p.is_file()
    except (OSError, ValueError) as e:
        raise ValueError(f"{p}: cannot access ({e})") from None
    if not exists:
        raise FileNotFoundError(f"{p}: no such file")
    if not is_file:
        raise ValueError(f"{p}: not a regular file")
    return p


def is_file(p: Path) -> bool:
    """``p.is_file()``, False where the name cannot even be looked up (e.g. too long)."""
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False


def resolve_inside(folder: Path, name: str, allow_outside: bool, what: str,
                   flag: str | None) -> Path:
    """``folder / name`` resolved (symlinks followed); refused when it leaves ``folder``.

    The one rule for names read from inside a data file (MTL and texture names, image and
    mask paths of a view dataset): absolute paths, ``..`` and symlinks that lead out of the
    file's folder are refused unless the caller opts in.

    Args:
        folder: the data file's folder. name: the path as written in the file.
        allow_outside: the caller's opt-in. what: what ``name`` is, for the message (e.g.
        "frames[3] file_path"). flag: how to opt in, for the message (e.g.
        "allow_outside=True"; None: no way).

    Raises:
        ValueError: ``name`` leads outside ``folder`` (the message names ``what``, the path
        and ``flag``), or cannot be resolved.
    """
    root = folder.resolve()
    try:
        p = (root / name).resolve()
    except (OSError, RuntimeError, ValueError) as e:  # symlink loops, NUL bytes
        raise ValueError(f"{what} {name!r}: cannot resolve ({e})") from None
    if not allow_outside and not p.is_relative_to(root):
        hint = f" (pass {flag} to allow it)" if flag else ""
        raise ValueError(f"{what} {name!r} resolves outside the folder {root}; refusing to "
                         f"read it{hint}")
    return p


def is_path(f: Any) -> bool:
    """True for ``str`` and ``os.PathLike`` (a file name), False for a stream."""
    return isinstance(f, (str, os.PathLike))


@contextlib.contextmanager
def open_input(f: PathOrStream, path_manager: Any = None, mode: str = "rb") -> Iterator[IO]:
    """A readable stream for ``f``: opened (and closed) here for a path, else ``f`` itself.

    A ``str`` goes through ``path_manager.open`` when one is given (iopath semantics).
    Raises FileNotFoundError naming the path when it does not exist, ValueError when it
    cannot be opened (not a regular file, no permission, a name too long).
    """
    if isinstance(f, str) and path_manager is not None:
        with path_manager.open(f, mode) as stream:
            yield stream
    elif is_path(f):
        p = existing_file(f)
        try:
            stream = open(p, mode)
        except OSError as e:  # permissions and the like: FileNotFoundError is handled above
            raise ValueError(f"{p}: cannot open ({e})") from e
        with stream:
            yield stream
    elif hasattr(f, "read"):
        yield f
    else:
        raise TypeError(f"f: expected a path or a readable stream, got {type(f).__name__}")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it over ``path``
    (:func:`diffrend.io.atomic.atomic_write_bytes`: ordinary mode, temp removed on failure)."""
    atomic_write_bytes(path, data)


def write_output(f: PathOrStream, data: bytes, path_manager: Any = None) -> None:
    """Write ``data`` to ``f``: atomically for a path, through ``path_manager`` for a ``str``
    when one is given, or into an open stream (text streams get it decoded as UTF-8)."""
    if isinstance(f, str) and path_manager is not None and not _is_local(path_manager, f):
        with path_manager.open(f, "wb") as out:
            out.write(data)
    elif is_path(f):
        atomic_write(Path(f), data)
    elif isinstance(f, io.TextIOBase):
        f.write(data.decode("utf-8"))
    elif hasattr(f, "write"):
        f.write(data)
    else:
        raise TypeError(f"f: expected a path or a writable stream, got {type(f).__name__}")


def _is_local(path_manager: Any, path: str) -> bool:
    """Whether iopath would handle ``path`` as a plain local file (then we write it atomically)."""
    get_handler = getattr(path_manager, "_PathManager__get_path_handler", None)
    if get_handler is None:
        return False
    try:
        handler = get_handler(path)
    except Exception:  # noqa: BLE001 - unknown path managers: let them write
        return False
    return type(handler).__name__ == "NativePathHandler"


def check_face_indices(
    faces: torch.Tensor, num: int, strict: bool, what: str = "Faces", pad_value: int | None = None
) -> None:
    """Out-of-range indices in an (F, 3) index tensor: ValueError when ``strict``, else
    PyTorch3D's warning ("Faces have invalid indices"). Rows that are all ``pad_value`` are
    skipped (faces without UVs or normals)."""
    if faces.numel() == 0:
        return
    rows = faces
    if pad_value is not None:
        rows = faces[faces.ne(pad_value).any(dim=-1)]
    if rows.numel() == 0:
        return
    bad = bool((rows < 0).any() or (rows >= num).any())
    if not bad:
        return
    worst = int(rows.min()) if bool((rows < 0).any()) else int(rows.max())
    if strict:
        raise ValueError(f"{what}: index {worst} out of range for {num} entries "
                         "(Faces have invalid indices)")
    warnings.warn("Faces have invalid indices", stacklevel=3)

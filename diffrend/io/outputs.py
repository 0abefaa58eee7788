"""A job's output files: PNG, GIF, text and JSON, every one written through
:mod:`.atomic` (the one atomic writer), and the check that an output folder is writable."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .atomic import _create_temp, atomic_open, atomic_write_bytes


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and check a file can be written in it.

    Raises:
        ValueError: the folder cannot be created or written (named in the message).
    """
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
        # A temporary file of the atomic writer: a stray probe is cleaned up like one.
        fd, probe = _create_temp(out / ".write-test")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"cannot write to {out}: the output folder is not writable ({e})") from e
    return out


def write_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write an (H, W, 3) uint8 array as PNG atomically (temp file + rename)."""
    from PIL import Image

    with atomic_open(path) as f:
        Image.fromarray(array).save(f, format="PNG")


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write a UTF-8 text file (JSON, HTML) atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(data: dict, path: str | os.PathLike) -> None:
    """Write ``data`` as indented JSON, atomically."""
    write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", path)


def write_gif(images: torch.Tensor, path: str | os.PathLike, fps: float = 12.0) -> None:
    """Write (N, H, W, 3) images in [0, 1] as a looping GIF, atomically."""
    from PIL import Image

    frames = [Image.fromarray(a) for a in
              (images.clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)]
    with atomic_open(path) as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:],
                       duration=int(1000 / fps), loop=0)


def write_gif_frames(frames: Sequence[np.ndarray], path: str | os.PathLike,
                     fps: float = 8.0, hold_last: int = 8) -> None:
    """Write (H, W, 3) uint8 frames as a looping GIF (the last one held a little),
    atomically."""
    if not frames:
        raise ValueError("frames is empty: nothing to animate")
    seq = list(frames) + [frames[-1]] * hold_last
    write_gif(torch.from_numpy(np.stack(seq)).float() / 255.0, path, fps=fps)


__all__ = ["check_writable", "write_gif", "write_gif_frames", "write_json", "write_png",
           "write_text"]

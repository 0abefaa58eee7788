"""Depth maps of a multi-view dataset: the ``depth_file_path`` of transforms.json frames.

The format is nerfstudio's, and ``diffrend render-dataset`` writes it: each frame names a
16-bit grayscale PNG (or a 32-bit integer or float image, or a 2-D ``.npy`` array) whose
value times the scale is the view-space z of the surface at the pixel centre (the
distance along the optical axis, not along the ray), 0 where nothing was measured. The
scale is the top-level ``integer_depth_scale`` (world units per step; ``render-dataset``
writes 1e-4) and, where that is absent, 1e-3: nerfstudio's default, millimetres for a
scene in metres (nerfstudio scales ``.npy`` files by it too). The depth is in the units of
the frames' ``transform_matrix``, as :func:`~diffrend.io.load_views` reads them
(unscaled).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .views import _MAX_PIXELS, _find_json, _read_json, _resolve_file

DEFAULT_DEPTH_SCALE = 1e-3  # nerfstudio's depth_unit_scale_factor: millimetres

PathLike = str | os.PathLike


def load_depth(path: PathLike, *, allow_outside: bool = False) -> torch.Tensor:
    """The depth maps of a transforms.json dataset, one per frame, in the frames' order
    (the order of :func:`~diffrend.io.load_views`' views).

    Args:
        path: the dataset folder or its transforms.json (as for ``load_views``).
        allow_outside: read depth files outside the JSON's folder (absolute paths, ``..``,
            symlinks out); refused by default, as for ``load_views``.

    Returns:
        ``(N, H, W)`` float32 view-space depth at the files' resolution, 0 where the file
        holds 0 (no measurement). CPU, no gradients.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: naming the file or frame: a cameras.json dataset (it has no depth
            maps), a frame without ``depth_file_path``, a missing or unreadable file, an
            8-bit or colour image, an array that is not 2-D numbers, NaN or inf values,
            maps of different sizes, an ``integer_depth_scale`` that is not a positive
            finite number.
    """
    json_path = _find_json(Path(path))
    spec = _read_json(json_path)
    if not isinstance(spec, dict) or "frames" not in spec:
        raise ValueError(f"{json_path}: depth maps are read from a transforms.json's frames "
                         "(depth_file_path); this file has no 'frames'")
    frames = spec["frames"]
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{json_path}: 'frames' must be a non-empty list")
    scale = spec.get("integer_depth_scale", DEFAULT_DEPTH_SCALE)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
            math.isfinite(scale) and scale > 0):
        raise ValueError(f"{json_path}: integer_depth_scale must be a positive number, got "
                         f"{scale!r}")
    maps = []
    for i, frame in enumerate(frames):
        where = f"{json_path.name} frames[{i}]"
        if not isinstance(frame, dict) or "depth_file_path" not in frame:
            raise ValueError(f"{where}: no depth_file_path (every view needs a depth map)")
        file = _resolve_file(json_path.parent, frame["depth_file_path"], where,
                             "depth_file_path", allow_outside)
        read = _read_depth_npy if file.suffix.lower() == ".npy" else _read_depth_image
        maps.append(read(file) * float(scale))
        if maps[-1].shape != maps[0].shape:
            raise ValueError(f"{where}: depth map {file.name} is {_size(maps[-1])}, the first "
                             f"frame's is {_size(maps[0])}")
    return torch.from_numpy(np.stack(maps)).float()


def _read_depth_image(path: Path) -> np.ndarray:
    """(H, W) float64 steps of a 16- or 32-bit grayscale image."""
    try:
        with Image.open(path) as img:
            if img.width * img.height > _MAX_PIXELS:  # before decoding the pixels
                raise ValueError(f"{img.width}x{img.height} pixels exceeds the cap of "
                                 f"{_MAX_PIXELS}")
            img.load()
            if not (img.mode.startswith("I") or img.mode == "F"):
                raise ValueError(f"mode {img.mode}: a depth map must be a 16-bit grayscale "
                                 "PNG, a 32-bit image or a .npy array (an 8-bit image is a "
                                 "picture of depth, not a measurement)")
            steps = np.asarray(img, dtype=np.float64)
    except (OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: cannot read depth map (a 16-bit grayscale PNG, a 32-bit "
                         f"image or a .npy array): {err}") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return _checked(steps, path)


def _read_depth_npy(path: Path) -> np.ndarray:
    """(H, W) float64 values of a 2-D numeric ``.npy`` array (or (H, W, 1))."""
    try:
        steps = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read depth map (.npy): {err}") from None
    if steps.ndim == 3 and steps.shape[2] == 1:
        steps = steps[..., 0]
    if steps.dtype.kind not in "uif":
        raise ValueError(f"{path}: a depth array must be numbers, got dtype {steps.dtype}")
    if steps.ndim == 2 and steps.size > _MAX_PIXELS:
        raise ValueError(f"{path}: {steps.shape[1]}x{steps.shape[0]} pixels exceeds the cap "
                         f"of {_MAX_PIXELS}")
    return _checked(steps.astype(np.float64), path)


def _checked(steps: np.ndarray, path: Path) -> np.ndarray:
    if steps.ndim != 2 or steps.size == 0:
        raise ValueError(f"{path}: not a single-channel depth map (shape {steps.shape})")
    if not np.isfinite(steps).all():
        raise ValueError(f"{path}: depth has NaN or inf values (write 0 where nothing was "
                         "measured)")
    return steps


def _size(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]}"


__all__ = ["DEFAULT_DEPTH_SCALE", "load_depth"]

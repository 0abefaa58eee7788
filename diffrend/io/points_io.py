"""Point cloud files: PLY out and in, through trimesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import trimesh

from .mesh_io import _atomic_write, _to_numpy
from .ply_io import _load_ply


def save_points_ply(path: str | Path, points: torch.Tensor,
                    colors: torch.Tensor | None = None) -> None:
    """Write a binary PLY point cloud (vertices only), atomically.

    Args:
        path: the file.
        points: (P, 3) float positions.
        colors: optional (P, 3) RGB in [0, 1], written as 8-bit red, green, blue.

    Raises:
        ValueError: bad shapes or non-finite values (named).
    """
    p = _to_numpy(points, "points", 3, integer=False)
    cloud = trimesh.PointCloud(p)
    if colors is not None:
        c = _to_numpy(colors, "colors", 3, integer=False)
        if c.shape != p.shape:
            raise ValueError(f"colors: expected shape {p.shape}, got {c.shape}")
        rgba = np.concatenate([np.round(np.clip(c, 0, 1) * 255), np.full((len(c), 1), 255)], 1)
        cloud.colors = rgba.astype(np.uint8)
    _atomic_write(Path(path), cloud.export(file_type="ply", encoding="binary"))


def load_points_ply(path: str | Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Read a PLY point cloud: ((P, 3) float32 points, (P, 3) colours or None).

    Read by :mod:`diffrend.io.ply_io` (ASCII and binary; faces, if any, are ignored).
    8-bit colours are divided by 255; float colours are returned as written.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable file, a file without vertices, or NaN/inf values.
    """
    try:
        d = _load_ply(path)
    except ValueError as e:
        raise ValueError(f"{path}: not a readable PLY point cloud ({e})") from e
    if len(d.verts) == 0:
        raise ValueError(f"{path}: no vertices")
    return d.verts, d.verts_colors

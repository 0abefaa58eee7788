"""Point cloud files: PLY out and in, through trimesh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import trimesh

from .mesh_io import _atomic_write, _to_numpy


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
    """Read a PLY point cloud: ((P, 3) float32 points, (P, 3) colours in [0, 1] or None).

    Raises:
        ValueError: unreadable file, or a file without vertices.
    """
    try:
        loaded = trimesh.load(str(path), file_type="ply", process=False)
    except Exception as e:  # noqa: BLE001 - trimesh raises many kinds on a bad file
        raise ValueError(f"{path}: not a readable PLY file ({e})") from e
    verts = getattr(loaded, "vertices", None)
    if verts is None or len(verts) == 0:
        raise ValueError(f"{path}: no vertices")
    points = torch.as_tensor(np.asarray(verts), dtype=torch.float32)
    colors = getattr(loaded, "colors", None)
    if colors is None:
        colors = getattr(getattr(loaded, "visual", None), "vertex_colors", None)
    cols = (torch.as_tensor(np.asarray(colors)[:, :3], dtype=torch.float32) / 255.0
            if colors is not None and len(colors) == len(verts) else None)
    return points, cols

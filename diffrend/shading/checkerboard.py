"""Checkerboard mesh with per-face colours (PyTorch3D's ``pytorch3d.utils.checkerboard``).

Lives above ``structures`` and ``shading`` because it needs both a ``Meshes`` and a texture.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..structures import Meshes
from .textures import TexturesAtlas


def checkerboard(
    radius: int = 4,
    color1: Sequence[float] = (0.0, 0.0, 0.0),
    color2: Sequence[float] = (1.0, 1.0, 1.0),
    device: str | torch.device | None = None,
) -> Meshes:
    """Unit squares in the z = 0 plane covering [-radius, radius]^2, alternately coloured.

    Vertex ``i * n + j`` (n = 2 radius + 1) is at (j - radius, i - radius, 0); each square
    gives two triangles, square (i, j) coloured ``color2`` when i + j is odd, else ``color1``.

    Args:
        radius: squares on each side of the origin (>= 1).
        color1: background colour (C channels).
        color2: foreground colour (the same C).
        device: where the tensors are allocated (default CPU).

    Returns:
        ``Meshes`` of one mesh with a 1x1 ``TexturesAtlas`` (one colour per face). Not
        differentiable (a constructor).
    """
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
        raise ValueError(f"radius must be > 0, got {radius!r}")
    if len(color1) != len(color2):
        raise ValueError("color1, color2: must have the same number of channels")
    device = torch.device(device) if device is not None else torch.device("cpu")
    n = 2 * radius + 1
    coords = torch.arange(-radius, radius + 1, dtype=torch.float32)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    verts = torch.stack([xs, ys, torch.zeros_like(xs)], dim=-1).reshape(-1, 3)
    i, j = torch.meshgrid(torch.arange(n - 1), torch.arange(n - 1), indexing="ij")
    k = (i * n + j).reshape(-1)
    top = torch.stack([k, k + 1, k + n + 1], -1)
    bottom = torch.stack([k, k + n + 1, k + n], -1)
    faces = torch.stack([top, bottom], 1).reshape(-1, 3)  # per square: top, then bottom
    odd = ((i + j) % 2 == 1).reshape(-1).repeat_interleave(2)
    c1 = torch.tensor(color1, dtype=torch.float32)
    c2 = torch.tensor(color2, dtype=torch.float32)
    colors = torch.where(odd[:, None], c2, c1)  # (F, C)
    atlas = TexturesAtlas(colors[None, :, None, None].to(device))
    return Meshes([verts.to(device)], [faces.to(device)], textures=atlas)

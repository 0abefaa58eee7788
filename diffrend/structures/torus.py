"""Torus mesh (PyTorch3D's ``pytorch3d.utils.torus``)."""

from __future__ import annotations

import math

import torch

from .meshes import Meshes


def torus(r: float, R: float, sides: int, rings: int,
          device: str | torch.device | None = None) -> Meshes:
    """A torus around the z axis: tube radius ``r``, centre-line radius ``R``.

    Vertex ``i * sides + j`` sits at ring angle ``2 pi i / rings`` and tube angle
    ``2 pi j / sides``; each grid quad gives two triangles (PyTorch3D's layout).

    Args:
        r: tube (inner) radius.
        R: radius of the tube's centre line.
        sides: divisions around the tube (> 0).
        rings: divisions around the z axis (> 0).
        device: where the tensors are allocated (default CPU).

    Returns:
        ``Meshes`` of one mesh with rings * sides float32 vertices and 2 * rings * sides
        faces. Not differentiable (a constructor).
    """
    if isinstance(sides, bool) or not isinstance(sides, int) or sides <= 0:
        raise ValueError(f"sides must be > 0, got {sides!r}")
    if isinstance(rings, bool) or not isinstance(rings, int) or rings <= 0:
        raise ValueError(f"rings must be > 0, got {rings!r}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    f64 = torch.float64  # angles in double, as computing them with math would
    phi = 2 * math.pi * torch.arange(rings, dtype=f64) / rings
    theta = 2 * math.pi * torch.arange(sides, dtype=f64) / sides
    phi, theta = phi[:, None], theta[None, :]
    tube = R + r * torch.cos(theta)
    verts = torch.stack([tube * torch.cos(phi), tube * torch.sin(phi),
                         (r * torch.sin(theta)).expand(rings, sides)], dim=-1)
    i0 = torch.arange(rings)[:, None]
    j0 = torch.arange(sides)[None, :]
    i1, j1 = (i0 + 1) % rings, (j0 + 1) % sides
    v00, v01 = i0 * sides + j0, i0 * sides + j1
    v10, v11 = i1 * sides + j0, i1 * sides + j1
    faces = torch.stack([torch.stack([v00, v10, v11], -1), torch.stack([v11, v01, v00], -1)],
                        dim=2)  # (rings, sides, 2, 3)
    return Meshes._trusted([verts.reshape(-1, 3).to(device=device, dtype=torch.float32)],
                           [faces.reshape(-1, 3).to(device)])

"""A UV layout for a mesh that started as a sphere: longitude/latitude of each vertex's
direction from the centre, with the seam faces given their own UV corners.

Fitted meshes start as ico-spheres, so every vertex keeps the direction it had on the sphere
(subdivision averages and renormalises it); the equirectangular map of those directions is a
texture layout without overlaps. Faces that straddle the seam (longitude +-180 degrees) get
UV corners shifted by one turn, so no face spans the whole map; those corners may fall beyond
u = 1, and the layout is rescaled to fit [0, 1].
"""

from __future__ import annotations

import math

import torch


def sphere_uvs(dirs: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Equirectangular UVs of unit directions.

    Args:
        dirs: (V, 3) directions (any length > 0; normalised here).
        faces: (F, 3) int64 vertex indices.

    Returns:
        ``(verts_uvs (V + S, 2), faces_uvs (F, 3))`` in [0, 1] (v up), where S UV corners
        are added for the faces across the seam. No gradients (a layout).
    """
    if dirs.ndim != 2 or dirs.shape[1] != 3:
        raise ValueError(f"dirs must have shape (V, 3), got {tuple(dirs.shape)}")
    with torch.no_grad():
        d = dirs / dirs.norm(dim=1, keepdim=True).clamp(min=1e-12)
        u = torch.atan2(d[:, 0], d[:, 2]) / (2 * math.pi) + 0.5
        v = torch.asin(d[:, 1].clamp(-1, 1)) / math.pi + 0.5
        uf = u[faces]
        seam = (uf.amax(1) - uf.amin(1)) > 0.5
        # On seam faces, corners on the u < 0.5 side move one turn right (to u + 1).
        shift = seam[:, None] & (uf < 0.5)
        n = u.shape[0]
        extra = faces[shift]
        faces_uvs = faces.clone()
        faces_uvs[shift] = n + torch.arange(extra.shape[0], device=faces.device)
        uvs = torch.cat([torch.stack([u, v], 1), torch.stack([u[extra] + 1, v[extra]], 1)])
        uvs[:, 0] = uvs[:, 0] / uvs[:, 0].max().clamp(min=1.0)
        return uvs, faces_uvs

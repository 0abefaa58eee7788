"""Barycentric helpers over rasterizer outputs: clipping and depth interpolation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..raster.mesh.pixel_math import CLIP_EPS
from .interpolate import interpolate_face_attributes

if TYPE_CHECKING:
    from ..structures import Meshes


def clip_barycentric_coordinates(bary: torch.Tensor) -> torch.Tensor:
    """Clip negative barycentric coordinates to 0 and renormalise them to sum to 1.

    What ``clip_barycentric_coords=True`` does to a pixel outside a face (within the blur
    radius): its point moves to the nearest point of the triangle. Empty entries (all three
    -1, the rasterizer's filler) stay -1.

    Args:
        bary: (..., 3) barycentric coordinates.

    Returns:
        (..., 3), differentiable w.r.t. ``bary``.

    Raises:
        ValueError: the last dimension is not 3.
    """
    if bary.shape[-1] != 3:
        raise ValueError(f"bary must have shape (..., 3), got {tuple(bary.shape)}")
    empty = (bary == -1).all(dim=-1, keepdim=True)
    clipped = bary.clamp(min=0.0)
    clipped = clipped / clipped.sum(dim=-1, keepdim=True).clamp(min=CLIP_EPS)
    return torch.where(empty, bary, clipped)


def interpolate_zbuf(
    pix_to_face: torch.Tensor, bary_coords: torch.Tensor, meshes: Meshes
) -> torch.Tensor:
    """View depth at each fragment from its face's vertex depths and barycentrics.

    Args:
        pix_to_face: (N, H, W, K) int64 indices into ``meshes.faces_packed()``, -1 = empty.
        bary_coords: (N, H, W, K, 3).
        meshes: meshes whose vertex z is the view depth (screen/NDC space meshes).

    Returns:
        zbuf (N, H, W, K), -1 where empty; differentiable w.r.t. the vertices and
        ``bary_coords``.
    """
    face_z = meshes.verts_packed()[meshes.faces_packed()][..., 2:]  # (F, 3, 1)
    z = interpolate_face_attributes(pix_to_face, bary_coords, face_z)[..., 0]
    return torch.where(pix_to_face >= 0, z, torch.full_like(z, -1.0))

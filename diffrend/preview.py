"""A quick look at a mesh: hard rasterization with head-light Lambert shading on face normals.

This is what ``diffrend render`` draws until the full shading pipeline (textures, lights,
materials, soft blending) lands; it only needs the rasterizer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from .cameras import FoVPerspectiveCameras, look_at_view_transform
from .raster import MeshRasterizer, RasterizationSettings

if TYPE_CHECKING:
    from .structures import Meshes


def normalize_meshes(meshes: Meshes) -> Meshes:
    """Centre each mesh's bounding box at the origin and scale its largest |coordinate| to 1."""
    verts = meshes.verts_padded()
    lo = verts.amin(dim=1, keepdim=True)
    hi = verts.amax(dim=1, keepdim=True)
    centred = verts - (lo + hi) / 2
    scale = centred.abs().flatten(1).amax(dim=1).clamp(min=1e-12)
    return meshes.update_padded(centred / scale[:, None, None])


def orbit_cameras(
    n_views: int, dist: float = 2.7, elev: float = 15.0, fov: float = 60.0,
    device: torch.device | str = "cpu",
) -> FoVPerspectiveCameras:
    """``n_views`` perspective cameras evenly spaced in azimuth around the origin."""
    azim = torch.linspace(0.0, 360.0, n_views + 1)[:-1]
    R, T = look_at_view_transform(dist=dist, elev=elev, azim=azim, device=device)
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, device=device)


@torch.no_grad()
def shaded_preview(
    meshes: Meshes,
    cameras: FoVPerspectiveCameras,
    image_size: int | tuple[int, int] = 256,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    color: tuple[float, float, float] = (0.75, 0.72, 0.68),
) -> torch.Tensor:
    """Grey head-light rendering of meshes (one mesh extended to all cameras).

    Returns:
        (N, H, W, 3) float images in [0, 1]. Not differentiable (a preview).
    """
    rasterizer = MeshRasterizer(cameras, RasterizationSettings(image_size=image_size))
    fragments = rasterizer(meshes)
    n = fragments.pix_to_face.shape[0]
    if len(meshes) == 1 and n > 1:
        meshes = meshes.extend(n)
    p2f = fragments.pix_to_face[..., 0]
    normals = meshes.faces_normals_packed()  # (F, 3) world space
    centers = meshes.verts_packed()[meshes.faces_packed()].mean(dim=1)
    eye = cameras.get_camera_center()  # (N, 3)
    face_cam = eye[meshes.faces_packed_to_mesh_idx()]
    to_eye = torch.nn.functional.normalize(face_cam - centers, dim=-1)
    lambert = (normals * to_eye).sum(-1).abs()  # two-sided
    shade = 0.25 + 0.75 * lambert
    img = shade[p2f.clamp(min=0)][..., None] * torch.tensor(color)
    bg = torch.tensor(background, dtype=img.dtype)
    return torch.where((p2f >= 0)[..., None], img, bg).clamp(0, 1)


def image_grid(images: torch.Tensor, cols: int | None = None) -> np.ndarray:
    """Tile (N, H, W, C) images in [0, 1] into one (rows*H, cols*W, C) uint8 array."""
    n, h, w, c = images.shape
    cols = cols or (n if n <= 4 else math.ceil(n / math.ceil(n / 4)))
    rows = math.ceil(n / cols)
    grid = np.ones((rows * h, cols * w, c), np.uint8) * 255
    arr = (images.clamp(0, 1).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * h : (r + 1) * h, q * w : (q + 1) * w] = arr[i]
    return grid

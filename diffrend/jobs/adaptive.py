"""Adaptive mesh resolution during a fit: where the images say detail is missing, shorter edges.

The fit (:mod:`.fit_mesh`) remeshes its surface every few steps with
:func:`~diffrend.ops.remesh` (continuous remeshing, Palfinger 2022) toward a per-vertex target
edge length built here from what the views show:

- a **base length** of ``edge_px`` pixels of the current stage's images at the object (the
  world size of a pixel is measured from the current mesh's projected edges, so the face count
  grows with the image size and follows cameras at any distance);
- **shorter where the error stays high**: the per-pixel silhouette (and colour) error of the
  rendered views, sampled at every vertex's projection and averaged over the steps since the
  last remesh, shrinks the target down to ``1 / refine`` of the base where it is largest;
- a **face budget**: when the targets would give more than ``max_faces`` faces, all of them
  grow by the same factor.

Everything here is detached bookkeeping (no gradients) on plain tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..cameras import CamerasBase

__all__ = ["pixels_per_unit", "target_edge_lengths", "vertex_errors"]


def _project(verts: torch.Tensor, cameras: CamerasBase, image_size: int) -> torch.Tensor:
    """(V, 3) world points -> (N, V, 3) screen pixels (x right, y down) and depth."""
    pts = verts.detach()[None].expand(len(cameras), -1, -1)
    return cameras.transform_points_screen(pts, image_size=((image_size, image_size),))


def vertex_errors(errors: torch.Tensor, verts: torch.Tensor, cameras: CamerasBase) -> torch.Tensor:
    """Each vertex's mean image error over the views: the error images sampled (bilinear,
    blurred by one pixel) where the vertex projects.

    Args:
        errors: (N, S, S) non-negative per-pixel errors of N views.
        verts: (V, 3) world positions.
        cameras: the N views' cameras.

    Returns:
        (V,) mean error; a vertex that projects outside a view counts 0 there. No gradient.
    """
    n, size = errors.shape[0], errors.shape[-1]
    if len(cameras) != n:
        raise ValueError(f"cameras: expected {n} cameras, got {len(cameras)}")
    with torch.no_grad():
        # The error sits on the silhouette's outline, vertices a pixel or so beside it.
        img = F.avg_pool2d(errors.detach()[:, None].float(), 3, stride=1, padding=1)
        xy = _project(verts, cameras, size)[..., :2]
        grid = (2.0 * xy / size - 1.0)[:, :, None, :].to(img.dtype)  # (N, V, 1, 2)
        sampled = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros",
                                align_corners=False)
        return sampled[:, 0, :, 0].mean(0).to(verts.dtype)


def pixels_per_unit(verts: torch.Tensor, edges: torch.Tensor, cameras: CamerasBase,
                    image_size: int) -> float:
    """How many pixels of ``image_size`` images one world unit of the surface spans: the
    median over views and edges of projected over true edge length.

    Args:
        verts: (V, 3) positions. edges: (E, 2) vertex index pairs. cameras: N views.
        image_size: side S of the square images.

    Returns:
        Pixels per world unit (> 0; foreshortened edges make it a slight underestimate).
    """
    with torch.no_grad():
        xy = _project(verts, cameras, image_size)[..., :2]
        a, b = edges.unbind(1)
        world = (verts[a] - verts[b]).norm(dim=1).clamp(min=1e-12)
        screen = (xy[:, a] - xy[:, b]).norm(dim=2)
        ratio = float((screen / world).median())
    if not math.isfinite(ratio) or ratio <= 0:
        raise ValueError("cameras: the mesh does not project into the views")
    return ratio


def target_edge_lengths(
    verts: torch.Tensor,
    faces: torch.Tensor,
    px_per_unit: float,
    edge_px: float,
    errors: torch.Tensor | None = None,
    refine: float = 2.0,
    max_faces: int | None = None,
) -> torch.Tensor:
    """Per-vertex target edge lengths for :func:`~diffrend.ops.remesh`.

    Args:
        verts: (V, 3) positions. faces: (F, 3) int64 faces.
        px_per_unit: pixels per world unit (:func:`pixels_per_unit`).
        edge_px: base edge length in pixels.
        errors: (V,) per-vertex errors (:func:`vertex_errors`) or None (uniform targets).
        refine: where the error is largest the target is ``1 / refine`` of the base
            (linear in the error relative to the 90th percentile of the non-zero errors;
            1: no refinement).
        max_faces: face budget; the targets grow uniformly when the estimated face count
            (surface area over equilateral triangles of the target size) exceeds it.

    Returns:
        (V,) positive lengths in world units.
    """
    if not (math.isfinite(px_per_unit) and px_per_unit > 0):
        raise ValueError(f"px_per_unit must be > 0, got {px_per_unit}")
    if not (math.isfinite(edge_px) and edge_px > 0):
        raise ValueError(f"edge_px must be > 0, got {edge_px}")
    if not (math.isfinite(refine) and refine >= 1):
        raise ValueError(f"refine must be >= 1, got {refine}")
    with torch.no_grad():
        base = edge_px / px_per_unit
        target = torch.full((verts.shape[0],), base, dtype=verts.dtype, device=verts.device)
        if errors is not None and refine > 1:
            nonzero = errors[errors > 0].float()
            top = torch.quantile(nonzero, 0.9).item() if nonzero.numel() else 0.0
            if top > 0:
                rel = (errors / top).clamp(0.0, 1.0)
                target = base / (1.0 + (refine - 1.0) * rel)
        if max_faces is not None and faces.shape[0]:
            tri = verts[faces]
            area = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).norm(dim=1) / 2
            face_t = target[faces].mean(1)
            estimate = float((area / (math.sqrt(3.0) / 4.0 * face_t**2)).sum())
            if estimate > max_faces:
                target = target * math.sqrt(estimate / max_faces)
        return target

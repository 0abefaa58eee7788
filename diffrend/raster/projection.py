"""World/view points -> the rasterizers' NDC x, y, for cameras with or without a matrix."""

from __future__ import annotations

from typing import TypeVar

import torch

from ..cameras.base import CamerasBase, try_get_projection_transform
from ..transforms.transform3d import apply_matrix

Batch = TypeVar("Batch")  # Meshes or Pointclouds


def extend_to_cameras(batch: Batch, cameras: CamerasBase, R: torch.Tensor | None,
                      what: str, one: str) -> Batch:
    """The batch seen by the cameras: one mesh or cloud with N cameras is extended to N;
    otherwise the counts must match (or there is one camera).

    Args:
        batch: ``Meshes`` or ``Pointclouds``. R: the per-call rotation override, or None.
        what, one: names for messages ("meshes", "mesh"; "pointclouds", "cloud").

    Raises:
        ValueError: when the batch sizes do not fit.
    """
    n_cam = len(cameras) if R is None else max(len(cameras), R.shape[0])
    if len(batch) == 1 and n_cam > 1:
        batch = batch.extend(n_cam)
    if n_cam not in (1, len(batch)):
        raise ValueError(
            f"cameras has batch size {n_cam} but {what} has {len(batch)}: "
            f"use one camera, one per {one}, or one {one}"
        )
    return batch


def project_view_points(
    cameras: CamerasBase,
    pts_view: torch.Tensor,
    pts_world: torch.Tensor,
    R: torch.Tensor | None = None,
    T: torch.Tensor | None = None,
) -> torch.Tensor:
    """NDC x, y of points seen by ``cameras``.

    Cameras with a projection matrix project the view-space points (and map screen-space
    cameras to NDC). Cameras without one (``FishEyeCameras``: a non-linear lens model)
    project with their own ``transform_points``, from view space, or from world space with
    the ``R``/``T`` overrides when they were built with ``world_coordinates=True``.

    Args:
        pts_view, pts_world: (N, P, 3) the same points in view and world space.

    Returns:
        (N, P, 2), differentiable w.r.t. the points and the camera parameters. With a
        projection matrix, points on the camera plane (view z = 0), which project to
        infinity, get x, y = 1e6 instead (far outside any image, no gradient).
    """
    to_ndc = try_get_projection_transform(cameras, {})
    if to_ndc is None:
        if getattr(cameras, "world_coordinates", False):
            cams = cameras if R is None and T is None else cameras.with_extrinsics(R=R, T=T)
            return cams.transform_points(pts_world)[..., :2]
        return cameras.transform_points(pts_view)[..., :2]
    if not cameras.in_ndc():
        to_ndc = to_ndc.compose(cameras.get_ndc_camera_transform())
    # One homogeneous product; a point on the camera plane (w = 0, or so small that x / w
    # overflows) is divided by 1 instead, so that no inf enters the backward pass, and then
    # parked. NaN input keeps its NaN (z is NaN too) and is reported by the rasterizer.
    out = apply_matrix(pts_view, to_ndc.get_matrix())  # (as Transform3d.transform_points)
    xy, w = out[..., :2], out[..., 3:]
    with torch.no_grad():
        off = (~torch.isfinite(xy / w)).any(-1, keepdim=True) & torch.isfinite(pts_view[..., 2:3])
    xy = (xy / torch.where(off, torch.ones_like(w), w)).to(pts_view.dtype)
    return torch.where(off, torch.full_like(xy, 1e6), xy)

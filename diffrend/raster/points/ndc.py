"""World -> the points rasterizer's space (PyTorch3D's ``PointsRasterizer.transform``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..projection import extend_to_cameras, project_world_points

if TYPE_CHECKING:
    from ...cameras.base import CamerasBase
    from ...structures import Pointclouds


def points_to_ndc(
    pointclouds_world: Pointclouds,
    cameras: CamerasBase,
    R: torch.Tensor | None = None,
    T: torch.Tensor | None = None,
) -> Pointclouds:
    """Project point clouds to the rasterizer's space: x, y in NDC, z the view-space depth.

    PyTorch3D's ``PointsRasterizer.transform``: world -> view with the cameras' R, T (or the
    ``R``/``T`` overrides), then projection and the NDC transform; z is replaced by the view
    depth. One cloud with N cameras is extended to N clouds; otherwise the counts must
    match (or there is one camera).

    Returns:
        ``Pointclouds`` with projected points (normals and features kept); differentiable
        w.r.t. the points and the camera parameters.
    """
    pointclouds_world = extend_to_cameras(pointclouds_world, cameras, R, "pointclouds",
                                          "cloud")
    # A point on the camera plane (view z = 0) is parked far outside the image (no pixel
    # lists it, no gradient) instead of failing the whole batch.
    pts = project_world_points(cameras, pointclouds_world.points_padded(), R=R, T=T)
    return pointclouds_world.update_padded(pts)

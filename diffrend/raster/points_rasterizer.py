"""``PointsRasterizer``: the PyTorch3D-style module holding cameras and points raster settings.

No logic of its own beyond resolving per-call overrides: world -> NDC through the cameras
(:func:`points_to_ndc`), then :func:`rasterize_points`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .fragments import PointFragments, PointsRasterizationSettings
from .points_api import rasterize_points
from .projection import project_view_points

if TYPE_CHECKING:
    from ..cameras.base import CamerasBase
    from ..structures import Pointclouds


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
    n_cam = len(cameras) if R is None else max(len(cameras), R.shape[0])
    if len(pointclouds_world) == 1 and n_cam > 1:
        pointclouds_world = pointclouds_world.extend(n_cam)
    if n_cam not in (1, len(pointclouds_world)):
        raise ValueError(
            f"cameras has batch size {n_cam} but pointclouds has {len(pointclouds_world)}: "
            "use one camera, one per cloud, or one cloud"
        )
    pts_world = pointclouds_world.points_padded()
    pts_view = cameras.get_world_to_view_transform(R=R, T=T).transform_points(pts_world)
    z = pts_view[..., 2:3]
    # A point on the camera plane (view z = 0) is parked far outside the image (no pixel
    # lists it, no gradient) instead of failing the whole batch.
    xy = project_view_points(cameras, pts_view, pts_world, R=R, T=T, park_camera_plane=True)
    return pointclouds_world.update_padded(torch.cat((xy, z), dim=-1))


class PointsRasterizer(nn.Module):
    """Rasterize world-space point clouds seen by cameras (PyTorch3D's ``PointsRasterizer``).

    Args:
        cameras: a camera batch (N or 1), or None to give one at call time.
        raster_settings: :class:`PointsRasterizationSettings` (defaults if None).
    """

    def __init__(
        self,
        cameras: CamerasBase | None = None,
        raster_settings: PointsRasterizationSettings | None = None,
    ) -> None:
        super().__init__()
        self.cameras = cameras
        self.raster_settings = raster_settings or PointsRasterizationSettings()

    def _cameras(self, cameras: CamerasBase | None) -> CamerasBase:
        cameras = cameras if cameras is not None else self.cameras
        if cameras is None:
            raise ValueError(
                "Cameras must be specified either at initialization or in the forward pass "
                "of PointsRasterizer"
            )
        return cameras

    def transform(
        self,
        point_clouds: Pointclouds,
        cameras: CamerasBase | None = None,
        R: torch.Tensor | None = None,
        T: torch.Tensor | None = None,
    ) -> Pointclouds:
        """World-space clouds -> clouds with x, y in NDC and z the view depth."""
        return points_to_ndc(point_clouds, self._cameras(cameras), R=R, T=T)

    def forward(
        self,
        point_clouds: Pointclouds,
        cameras: CamerasBase | None = None,
        raster_settings: PointsRasterizationSettings | None = None,
        R: torch.Tensor | None = None,
        T: torch.Tensor | None = None,
    ) -> PointFragments:
        """Rasterize.

        Args:
            point_clouds: ``Pointclouds`` (N or 1) in world space.
            cameras, raster_settings, R, T: per-call overrides of the stored ones.

        Returns:
            :class:`PointFragments` of (N, H, W, K) tensors; idx indexes the packed points
            of the (possibly extended) batch; zbuf and dists are differentiable w.r.t. the
            points and the camera parameters.
        """
        s = raster_settings or self.raster_settings
        n_given = len(point_clouds)
        pts_ndc = points_to_ndc(point_clouds, self._cameras(cameras), R=R, T=T)
        radius = s.radius
        if torch.is_tensor(radius) and len(pts_ndc) != n_given:
            # One cloud extended to N cameras: its per-point radii go with every copy.
            if radius.ndim == 1:
                radius = radius.repeat(len(pts_ndc))
            elif radius.ndim == 2 and radius.shape[0] == 1:
                radius = radius.expand(len(pts_ndc), -1)
        return rasterize_points(
            pts_ndc,
            image_size=s.image_size,
            radius=radius,
            points_per_pixel=s.points_per_pixel,
            backend=s.backend,
        )

    def to(self, *args, **kwargs) -> PointsRasterizer:  # noqa: D102 - nn.Module's signature
        super().to(*args, **kwargs)
        if self.cameras is not None:
            device = torch.empty(0).to(*args, **kwargs).device
            self.cameras = self.cameras.to(device)
        return self

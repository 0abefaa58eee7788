"""The PyTorch3D-style rasterizer modules, ``MeshRasterizer`` and ``PointsRasterizer``.

They hold cameras and raster settings and have no logic of their own beyond resolving
per-call overrides: world -> NDC through the cameras (:func:`.mesh.meshes_to_ndc`,
:func:`.points.points_to_ndc`), then :func:`.mesh.rasterize_meshes` or
:func:`.points.rasterize_points`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .fragments import (
    Fragments,
    PointFragments,
    PointsRasterizationSettings,
    RasterizationSettings,
)
from .mesh import meshes_to_ndc, rasterize_meshes, resolve_settings
from .points import points_to_ndc, rasterize_points

if TYPE_CHECKING:
    from ..cameras.base import CamerasBase
    from ..structures import Meshes, Pointclouds


class _CameraModule(nn.Module):
    """A module holding a camera batch (or None, to give one at call time)."""

    def __init__(self, cameras: CamerasBase | None) -> None:
        super().__init__()
        self.cameras = cameras

    def _cameras(self, cameras: CamerasBase | None) -> CamerasBase:
        cameras = cameras if cameras is not None else self.cameras
        if cameras is None:
            raise ValueError(
                "Cameras must be specified either at initialization or in the forward pass "
                f"of {type(self).__name__}"
            )
        return cameras

    def to(self, *args, **kwargs) -> _CameraModule:  # noqa: D102 - nn.Module's signature
        super().to(*args, **kwargs)
        if self.cameras is not None:
            device = torch.empty(0).to(*args, **kwargs).device
            self.cameras = self.cameras.to(device)
        return self


class MeshRasterizer(_CameraModule):
    """Rasterize world-space meshes seen by cameras (PyTorch3D's ``MeshRasterizer``).

    Args:
        cameras: a camera batch (N or 1), or None to give one at call time.
        raster_settings: :class:`RasterizationSettings` (defaults if None).
    """

    def __init__(
        self,
        cameras: CamerasBase | None = None,
        raster_settings: RasterizationSettings | None = None,
    ) -> None:
        super().__init__(cameras)
        self.raster_settings = raster_settings or RasterizationSettings()

    def transform(
        self,
        meshes_world: Meshes,
        cameras: CamerasBase | None = None,
        R: torch.Tensor | None = None,
        T: torch.Tensor | None = None,
    ) -> Meshes:
        """World-space meshes -> meshes with x, y in NDC and z the view depth."""
        return meshes_to_ndc(meshes_world, self._cameras(cameras), R=R, T=T)

    def forward(
        self,
        meshes_world: Meshes,
        cameras: CamerasBase | None = None,
        raster_settings: RasterizationSettings | None = None,
        R: torch.Tensor | None = None,
        T: torch.Tensor | None = None,
    ) -> Fragments:
        """Rasterize.

        Args:
            meshes_world: ``Meshes`` (N or 1) in world space.
            cameras, raster_settings, R, T: per-call overrides of the stored ones.

        Returns:
            :class:`Fragments` of (N, H, W, K) tensors; zbuf, bary_coords and dists are
            differentiable w.r.t. the vertices and the camera parameters.
        """
        cameras = self._cameras(cameras)
        s = raster_settings or self.raster_settings
        meshes_ndc = meshes_to_ndc(meshes_world, cameras, R=R, T=T)
        persp, clip, z_clip = resolve_settings(s, cameras)
        return rasterize_meshes(
            meshes_ndc,
            image_size=s.image_size,
            blur_radius=s.blur_radius,
            faces_per_pixel=s.faces_per_pixel,
            perspective_correct=persp,
            clip_barycentric_coords=clip,
            cull_backfaces=s.cull_backfaces,
            z_clip_value=z_clip,
            cull_to_frustum=s.cull_to_frustum,
            backend=s.backend,
        )


class PointsRasterizer(_CameraModule):
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
        super().__init__(cameras)
        self.raster_settings = raster_settings or PointsRasterizationSettings()

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

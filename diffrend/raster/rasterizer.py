"""``MeshRasterizer``: the PyTorch3D-style module holding cameras and raster settings.

It has no logic of its own beyond resolving settings: world -> NDC through the cameras, then
:func:`rasterize_meshes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .api import rasterize_meshes
from .fragments import Fragments, RasterizationSettings
from .projection import project_view_points

if TYPE_CHECKING:
    from ..cameras.base import CamerasBase
    from ..structures import Meshes


def meshes_to_ndc(
    meshes_world: Meshes,
    cameras: CamerasBase,
    R: torch.Tensor | None = None,
    T: torch.Tensor | None = None,
) -> Meshes:
    """Project meshes to the rasterizer's space: x, y in NDC, z the view-space depth.

    One mesh with N cameras is extended to N meshes; otherwise the counts must match (or
    there is one camera). ``R``/``T`` override the cameras' extrinsics for this call.

    Returns:
        ``Meshes`` with projected vertices; differentiable w.r.t. vertices and cameras.
        Vertices whose projection is not finite (on the camera plane) get x, y = 1e6.
    """
    n_cam = len(cameras) if R is None else max(len(cameras), R.shape[0])
    if len(meshes_world) == 1 and n_cam > 1:
        meshes_world = meshes_world.extend(n_cam)
    if n_cam not in (1, len(meshes_world)):
        raise ValueError(
            f"cameras has batch size {n_cam} but meshes has {len(meshes_world)}: "
            "use one camera, one per mesh, or one mesh"
        )
    verts_world = meshes_world.verts_padded()
    verts_view = cameras.get_world_to_view_transform(R=R, T=T).transform_points(verts_world)
    # A vertex on the camera plane has no projection (x / 0): parked far outside the image,
    # finite and without gradient. Its faces are then skipped (z < 1e-8), or, clipped at
    # z_clip_value, shrink to nothing (the cut points land on the other vertices), in both
    # backends alike, instead of NaN/inf reaching the kernels and the backward.
    xy = project_view_points(cameras, verts_view, verts_world, R=R, T=T,
                             park_camera_plane=True)
    verts_ndc = torch.cat((xy, verts_view[..., 2:3]), dim=-1)
    return meshes_world.update_padded(verts_ndc)


def resolve_settings(
    settings: RasterizationSettings, cameras: CamerasBase
) -> tuple[bool, bool, float | torch.Tensor | None]:
    """PyTorch3D's defaults for the settings left as None.

    Returns:
        (perspective_correct, clip_barycentric_coords, z_clip_value): perspective correction
        follows the camera; clipping of barycentrics is on when blurring; near-plane clipping
        at znear / 2 for perspective cameras that have a znear (then a 0-dim tensor on the
        camera's device, not read back to the host here).
    """
    clip = settings.clip_barycentric_coords
    if clip is None:
        clip = settings.blur_radius > 0.0
    persp = settings.perspective_correct
    if persp is None:
        persp = cameras.is_perspective()
    z_clip = settings.z_clip_value
    if z_clip is None and persp:
        znear = cameras.get_znear()
        if znear is not None:
            # kept on the device: clip_faces reads it together with the depth check, in
            # one host synchronisation
            z_clip = torch.as_tensor(znear).detach().min() / 2.0
    return bool(persp), bool(clip), z_clip


class MeshRasterizer(nn.Module):
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
        super().__init__()
        self.cameras = cameras
        self.raster_settings = raster_settings or RasterizationSettings()

    def _cameras(self, cameras: CamerasBase | None) -> CamerasBase:
        cameras = cameras if cameras is not None else self.cameras
        if cameras is None:
            raise ValueError(
                "Cameras must be specified either at initialization or in the forward pass "
                "of MeshRasterizer"
            )
        return cameras

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

    def to(self, *args, **kwargs) -> MeshRasterizer:  # noqa: D102 - nn.Module's signature
        super().to(*args, **kwargs)
        if self.cameras is not None:
            device = torch.empty(0).to(*args, **kwargs).device
            self.cameras = self.cameras.to(device)
        return self

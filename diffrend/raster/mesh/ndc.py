"""World -> the mesh rasterizer's space, and PyTorch3D's defaults for the settings left None."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..fragments import RasterizationSettings
from ..projection import extend_to_cameras, project_world_points

if TYPE_CHECKING:
    from ...cameras.base import CamerasBase
    from ...structures import Meshes


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
    meshes_world = extend_to_cameras(meshes_world, cameras, R, "meshes", "mesh")
    # A vertex on the camera plane has no projection (x / 0): parked far outside the image,
    # finite and without gradient. Its faces are then skipped (z < 1e-8), or, clipped at
    # z_clip_value, shrink to nothing (the cut points land on the other vertices), in both
    # backends alike, instead of NaN/inf reaching the kernels and the backward.
    verts_ndc = project_world_points(cameras, meshes_world.verts_padded(), R=R, T=T)
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

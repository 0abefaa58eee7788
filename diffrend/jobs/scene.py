"""Cameras and target views for the fitting jobs.

A job fits to a :class:`~diffrend.io.MultiViewData`: real photographs loaded with
:func:`~diffrend.io.load_views`, or views rendered here from a known mesh (as PyTorch3D's
tutorials do), which also lets the job measure its 3D error.
"""

from __future__ import annotations

import math

import torch

from ..cameras import CamerasBase, FoVPerspectiveCameras, look_at_view_transform
from ..io.views import MultiViewData
from ..modules.mesh import MeshShader
from ..raster import MeshRasterizer, RasterizationSettings
from ..render.blend import BlendParams
from ..shading import AmbientLights, Materials, PointLights
from ..structures import Meshes


def sphere_cameras(
    n_views: int,
    dist: float = 2.7,
    fov: float = 60.0,
    offset: float = 0.5,
    max_elev: float = 75.0,
    device: torch.device | str = "cpu",
) -> FoVPerspectiveCameras:
    """``n_views`` cameras spread evenly over a sphere around the origin, looking at it.

    Directions follow a Fibonacci spiral (even coverage from above, below and all sides,
    which silhouette fitting needs); ``offset`` in (0, 1) shifts the spiral, so two calls
    with different offsets give disjoint sets (training and held-out views). Elevations are
    clamped to ``max_elev`` degrees so no camera looks straight along the up axis.

    Returns:
        N FoV perspective cameras (R (N, 3, 3), T (N, 3)), no gradients.
    """
    if not isinstance(n_views, int) or n_views < 1:
        raise ValueError(f"n_views must be an int >= 1, got {n_views!r}")
    if not 0.0 < offset < 1.0:
        raise ValueError(f"offset must be in (0, 1), got {offset}")
    i = torch.arange(n_views, dtype=torch.float64) + offset
    elev = torch.rad2deg(torch.asin(1.0 - 2.0 * i / n_views)).clamp(-max_elev, max_elev)
    azim = (i * (180.0 * (3.0 - math.sqrt(5.0)))) % 360.0  # golden angle
    R, T = look_at_view_transform(dist=dist, elev=elev.float(), azim=azim.float(), device=device)
    return FoVPerspectiveCameras(R=R, T=T, fov=fov, device=device)


def headlights(cameras: CamerasBase) -> PointLights:
    """One point light per camera, at the camera (every view lit from the front).

    The lights of rendered targets, and of a fit that knows them: a fixed world light would
    leave the views from behind the object dark, with little colour signal.
    """
    return PointLights(location=cameras.get_camera_center().detach(), device=cameras.device)


def unlit(device: torch.device | str = "cpu") -> AmbientLights:
    """Full ambient light: rendered colour = albedo (for photographs with unknown lights)."""
    return AmbientLights(device=device)


def render_hard(mesh: Meshes, cameras: CamerasBase, image_size: int,
                lit: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard-rasterized Phong render of one textured mesh from N cameras, black background.

    Args:
        mesh: one mesh with textures. cameras: N cameras. image_size: square side S.
        lit: lit by :func:`headlights`, else unlit (colour = albedo).

    Returns:
        ``(rgba (N, S, S, 4), pix_to_face (N, S, S, 1))``; rgba differentiable w.r.t. the
        texture / vertex colours (and the vertices through the barycentrics).
    """
    device = mesh.device
    rasterizer = MeshRasterizer(raster_settings=RasterizationSettings(image_size=image_size))
    shader = MeshShader("phong", "hard", device, materials=Materials(device=device),
                        blend_params=BlendParams(background_color=(0.0, 0.0, 0.0)))
    meshes = mesh.extend(len(cameras))
    fragments = rasterizer(meshes, cameras=cameras)
    lights = headlights(cameras) if lit else unlit(device)
    return shader(fragments, meshes, cameras=cameras, lights=lights), fragments.pix_to_face


@torch.no_grad()
def render_target_views(
    mesh: Meshes,
    cameras: CamerasBase,
    image_size: int,
    lit: bool = True,
    batch_size: int = 10,
) -> MultiViewData:
    """Render a textured mesh from every camera: hard-rasterized colour and silhouette.

    Args:
        mesh: one mesh with textures (its colours become the targets).
        cameras: N cameras.
        image_size: side of the square images.
        lit: lit by :func:`headlights` (True) or unlit, the colour being the albedo.
        batch_size: views per renderer call (bounds memory).

    Returns:
        MultiViewData with images (N, S, S, 3) on a black background and binary masks
        (N, S, S); names ``view_000`` .... No gradients.
    """
    if not isinstance(mesh, Meshes) or len(mesh) != 1 or mesh.textures is None:
        raise ValueError("mesh must be one mesh with textures")
    images, masks = [], []
    for start in range(0, len(cameras), batch_size):
        idx = list(range(start, min(start + batch_size, len(cameras))))
        rgba, pix_to_face = render_hard(mesh, cameras[idx], image_size, lit)
        images.append(rgba[..., :3].clamp(0, 1))
        masks.append((pix_to_face[..., 0] >= 0).to(rgba.dtype))
    names = tuple(f"view_{i:03d}" for i in range(len(cameras)))
    return MultiViewData(images=torch.cat(images), masks=torch.cat(masks), cameras=cameras,
                         names=names)


def cameras_focus(cameras: CamerasBase) -> tuple[torch.Tensor, float]:
    """Where the cameras look: the point nearest all optical axes, and its median distance.

    Returns:
        ``(centre (3,), distance)``: the least-squares intersection of the cameras' viewing
        rays through the image centre, and the median camera distance to it.
    """
    R = cameras.R.detach().double()
    centres = cameras.get_camera_center().detach().double()  # (N, 3)
    dirs = R[:, :, 2]  # view +Z in world coordinates (rows of R^T)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    proj = torch.eye(3, dtype=R.dtype, device=R.device) - dirs[:, :, None] * dirs[:, None, :]
    lhs, rhs = proj.sum(0), (proj @ centres[:, :, None]).sum(0)[:, 0]
    if len(cameras) < 2 or torch.linalg.matrix_rank(lhs) < 3:
        # Parallel axes: fall back to a point in front of the mean camera.
        centre = centres.mean(0) + dirs.mean(0) * centres.norm(dim=1).mean()
    else:
        centre = torch.linalg.solve(lhs, rhs)
    dist = (centres - centre).norm(dim=1).median().item()
    return centre.float(), dist

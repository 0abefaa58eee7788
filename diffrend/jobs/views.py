"""Cameras, target views and the renders the fitting jobs share.

A job fits to a :class:`~diffrend.io.MultiViewData`: real photographs loaded with
:func:`~diffrend.io.load_views`, or views rendered here from a known mesh (as PyTorch3D's
tutorials do), which also lets the job measure its 3D error. Also here, once for every job:
the soft-silhouette renderer (its blur set in pixels), the hard Phong render of previews
and frames, image resizing of targets, and the unit-box normalisation of meshes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..cameras import CamerasBase, FoVPerspectiveCameras, look_at_view_transform
from ..gradients.antialias import antialias_render
from ..io.views import MultiViewData
from ..modules.mesh import MeshShader
from ..raster import Fragments, MeshRasterizer, RasterizationSettings
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
    rgba, fragments = render_hard_fragments(mesh, cameras, image_size, lit)
    return rgba, fragments.pix_to_face


def render_hard_fragments(mesh: Meshes, cameras: CamerasBase, image_size: int,
                          lit: bool) -> tuple[torch.Tensor, Fragments]:
    """:func:`render_hard` that also returns the rasterizer's fragments (one face per pixel:
    ``zbuf`` view-space depth, ``bary_coords``, ``pix_to_face`` into the N-times extended
    mesh's packed faces), for depth and normal maps of the same render.

    Returns:
        ``(rgba (N, S, S, 4), fragments)`` with K = 1; differentiable as :func:`render_hard`.
    """
    device = mesh.device
    rasterizer = MeshRasterizer(raster_settings=RasterizationSettings(image_size=image_size))
    shader = MeshShader("phong", "hard", device, materials=Materials(device=device),
                        blend_params=BlendParams(background_color=(0.0, 0.0, 0.0)))
    meshes = mesh.extend(len(cameras))
    fragments = rasterizer(meshes, cameras=cameras)
    lights = headlights(cameras) if lit else unlit(device)
    return shader(fragments, meshes, cameras=cameras, lights=lights), fragments


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


def render_depth(mesh: Meshes, cameras: CamerasBase, image_size: int) -> torch.Tensor:
    """View-space depth of one mesh from N cameras (hard rasterization, one face a pixel).

    Args:
        mesh: one mesh. cameras: N cameras. image_size: square side S.

    Returns:
        (N, S, S) depth at each pixel centre, -1 where no face covers it; differentiable
        w.r.t. the vertices (and the cameras).
    """
    rasterizer = MeshRasterizer(raster_settings=RasterizationSettings(image_size=image_size))
    return rasterizer(mesh.extend(len(cameras)), cameras=cameras).zbuf[..., 0]


@torch.no_grad()
def render_target_depth(mesh: Meshes, cameras: CamerasBase, image_size: int,
                        batch_size: int = 10) -> torch.Tensor:
    """Depth maps of a target mesh, as an RGB-D camera would give them beside
    :func:`render_target_views`' images (``fit_mesh(..., depth=...)``).

    Args:
        mesh: one mesh. cameras: N cameras. image_size: square side S.
        batch_size: views per rasterizer call (bounds memory).

    Returns:
        (N, S, S) view-space depth, -1 where the object is absent. No gradients.
    """
    if not isinstance(mesh, Meshes) or len(mesh) != 1:
        raise ValueError("mesh must be one mesh")
    maps = [render_depth(mesh, cameras[list(range(i, min(i + batch_size, len(cameras))))],
                         image_size)
            for i in range(0, len(cameras), batch_size)]
    return torch.cat(maps)


def resize_depth(depth: torch.Tensor, size: int | tuple[int, int],
                 spread: float = 0.05) -> torch.Tensor:
    """(N, H, W) depth maps -> (N, h, w): each pixel the mean depth of the pixels it
    covers, or -1 where that mean is no surface's depth: where the object does not cover
    all of them (the outline, which would mix in the background) or where their depths
    differ by more than ``spread`` times the mean (an occluding edge in front of a farther
    surface). Unchanged when already that size; shrinking only. On the cow, 128 -> 32
    pixels: within 0.8% of a depth map rendered at 32 pixels where both have a value, 63%
    of the object's pixels kept (at a spread of 0.1: 1.8%, 76%).

    Args:
        depth: (N, H, W), > 0 where the object is, <= 0 elsewhere.
        size: the side ``s`` of square maps, or ``(h, w)``; at most ``(H, W)``.

    Returns:
        (N, h, w), no gradients needed (targets).

    Raises:
        ValueError: a size larger than the maps.
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(depth.shape[1:]) == hw:
        return depth
    if hw[0] > depth.shape[1] or hw[1] > depth.shape[2]:
        raise ValueError(f"size must be at most the depth maps' {tuple(depth.shape[1:])}, "
                         f"got {size}")
    valid = (depth > 0).to(depth.dtype)
    total = F.interpolate((depth * valid)[:, None], size=hw, mode="area")[:, 0]
    covered = F.interpolate(valid[:, None], size=hw, mode="area")[:, 0]
    mean = total / covered.clamp(min=1e-12)
    # (adaptive pooling bins the pixels as area interpolation does)
    highest = F.adaptive_max_pool2d(depth[:, None], hw)[:, 0]
    lowest = -F.adaptive_max_pool2d(-depth[:, None], hw)[:, 0]
    ok = (covered >= 1.0 - 1e-6) & (highest - lowest <= spread * mean)
    return torch.where(ok, mean, torch.full_like(total, -1.0))


def nearest_point_to_lines(origins: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor | None:
    """The point nearest N lines in the least-squares sense (sum of squared distances).

    Args:
        origins: (N, 3) a point on each line. dirs: (N, 3) their directions (any length).

    Returns:
        (3,) float64 point, or None when the lines are all parallel (no single nearest point).
        Not differentiable.
    """
    dirs = dirs.detach().double()
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    proj = torch.eye(3, dtype=dirs.dtype, device=dirs.device) - dirs[:, :, None] * dirs[:, None, :]
    lhs = proj.sum(0)
    if torch.linalg.matrix_rank(lhs) < 3:
        return None
    return torch.linalg.solve(lhs, (proj @ origins.detach().double()[:, :, None]).sum(0)[:, 0])


def cameras_focus(cameras: CamerasBase) -> tuple[torch.Tensor, float]:
    """Where the cameras look: the point nearest all optical axes, and its median distance.

    Returns:
        ``(centre (3,), distance)``: the least-squares intersection of the cameras' viewing
        rays through the image centre, and the median camera distance to it.
    """
    R = cameras.R.detach().double()
    centres = cameras.get_camera_center().detach().double()  # (N, 3)
    dirs = R[:, :, 2]  # view +Z in world coordinates (rows of R^T)
    centre = nearest_point_to_lines(centres, dirs) if len(cameras) >= 2 else None
    if centre is None:
        # Parallel axes: fall back to a point in front of the mean camera.
        dirs = dirs / dirs.norm(dim=1, keepdim=True)
        centre = centres.mean(0) + dirs.mean(0) * centres.norm(dim=1).mean()
    dist = (centres - centre).norm(dim=1).median().item()
    return centre.float(), dist


def unit_box(verts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The similarity that puts each batch's bounding box at the origin with max
    |coordinate| 1.

    Args:
        verts: (N, V, 3) points (N batches).

    Returns:
        ``(centre (N, 1, 3), scale (N,))``: normalised points are
        ``(verts - centre) / scale[:, None, None]``.
    """
    lo = verts.amin(dim=1, keepdim=True)
    hi = verts.amax(dim=1, keepdim=True)
    centre = (lo + hi) / 2
    scale = (verts - centre).abs().flatten(1).amax(dim=1).clamp(min=1e-12)
    return centre, scale


def normalize_meshes(meshes: Meshes) -> Meshes:
    """Centre each mesh's bounding box at the origin and scale its largest |coordinate| to 1."""
    verts = meshes.verts_padded()
    centre, scale = unit_box(verts)
    return meshes.update_padded((verts - centre) / scale[:, None, None])


def sigma_for_blur(blur_px: float, image_size: int) -> tuple[float, float]:
    """SoftRas sigma whose probability falls to 1e-4-ish at ``blur_px`` pixels.

    Returns:
        ``(sigma, blur_radius)`` with ``blur_radius = (2 * blur_px / image_size)**2`` (squared
        NDC distance, the rasterizer's unit) and ``sigma * log(1 / sigma - 1) = blur_radius``
        (PyTorch3D's relation between the two).
    """
    r2 = (2.0 * blur_px / image_size) ** 2
    sigma = 1e-4
    for _ in range(60):  # fixed point of sigma = r2 / log(1/sigma - 1): a contraction
        sigma = r2 / math.log(1.0 / sigma - 1.0)
    return sigma, r2


def _hard_phong(device: torch.device | str) -> MeshShader:
    """The fits' colour shader: Phong-lit nearest face on black."""
    return MeshShader("phong", "hard", device, materials=Materials(device=device),
                      blend_params=BlendParams(background_color=(0.0, 0.0, 0.0)))


def _shade(shader: MeshShader, fragments, meshes: Meshes, cameras: CamerasBase,
           lit: bool) -> torch.Tensor:
    """(N, H, W, 3) colours of ``fragments`` under the headlights (``lit``) or unlit."""
    lights = headlights(cameras) if lit else unlit(meshes.device)
    return shader(fragments, meshes, cameras=cameras, lights=lights)[..., :3]


class SoftSilhouetteRenderer:
    """Soft silhouettes of one mesh from N cameras (SoftRas's aggregate ``1 - prod(1 - D)``)
    and, optionally, the hard-blended Phong colour over the same rasterization.

    The blur is set in pixels: K faces must cover every pixel the blur reaches, or the
    truncated union leaves interior pixels below 1 and biases the fit.

    Args:
        image_size: side S of square images, or (H, W) (NDC's [-1, 1] spans the short side).
        blur_px: blur radius in pixels.
        faces_per_pixel: K of the soft rasterizer.
        device: where the shaders' parameters live.
        with_rgb: also render colour.
        lit: colour lit by :func:`headlights` (else :func:`unlit`: colour = albedo).
    """

    def __init__(self, image_size: int | tuple[int, int], blur_px: float, faces_per_pixel: int,
                 device: torch.device | str, with_rgb: bool = True, lit: bool = True) -> None:
        short = image_size if isinstance(image_size, int) else min(image_size)
        sigma, r2 = sigma_for_blur(blur_px, short)
        self.rasterizer = MeshRasterizer(raster_settings=RasterizationSettings(
            image_size=image_size, blur_radius=r2, faces_per_pixel=faces_per_pixel))
        self.silhouette = MeshShader("silhouette", "sigmoid", device,
                                     blend_params=BlendParams(sigma=sigma, gamma=1e-4))
        self.color = _hard_phong(device)
        self.with_rgb = with_rgb
        self.lit = lit

    def __call__(self, mesh: Meshes,
                 cameras: CamerasBase) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Soft silhouettes (N, H, W) and, with ``with_rgb``, colours (N, H, W, 3)."""
        meshes = mesh.extend(len(cameras))
        fragments = self.rasterizer(meshes, cameras=cameras)
        sil = self.silhouette(fragments, meshes, cameras=cameras)[..., 3]
        if not self.with_rgb:
            return sil, None
        return sil, _shade(self.color, fragments, meshes, cameras, self.lit)


class AntialiasRenderer:
    """Hard silhouettes (and colours) of one mesh from N cameras, antialiased analytically
    at the outline (nvdiffrast's method, :func:`~diffrend.gradients.antialias`): the same
    call as :class:`SoftSilhouetteRenderer`, for a fit's last stage.

    Why: SoftRas's union ``1 - prod(1 - D)`` counts every face near an outside pixel, and
    at an outline there are always several (the front and back faces meeting at the rim,
    faces seen edge-on), so the soft silhouette's 0.5 level lies about 0.3 px outside the
    true outline and a fit against hard masks shrinks the surface by as much (7% of the
    area of a 15-pixel object). Here the forward pass is the hard render with the outline
    pixels blended by their coverage, so the outline lands where the masks' is; vertex
    gradients flow only at the outline pixels (one pixel wide), which suits a fit already
    within a pixel or two of the masks. The colours come from the same single-layer hard
    rasterization (no blur: nothing bleeds past the outline).

    Args:
        image_size: side S of square images, or (H, W).
        device: where the shader's parameters live.
        with_rgb: also render colour.
        lit: colour lit by :func:`headlights` (else :func:`unlit`).
    """

    def __init__(self, image_size: int | tuple[int, int], device: torch.device | str,
                 with_rgb: bool = True, lit: bool = True) -> None:
        self.rasterizer = MeshRasterizer(raster_settings=RasterizationSettings(
            image_size=image_size, blur_radius=0.0, faces_per_pixel=1))
        self.color = _hard_phong(device)
        self.with_rgb = with_rgb
        self.lit = lit

    def __call__(self, mesh: Meshes,
                 cameras: CamerasBase) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Silhouettes (N, H, W) in [0, 1] and, with ``with_rgb``, colours (N, H, W, 3);
        differentiable w.r.t. the vertices (outline pixels; colours also through the
        barycentrics) and the colours."""
        meshes = mesh.extend(len(cameras))
        fragments = self.rasterizer(meshes, cameras=cameras)
        covered = (fragments.pix_to_face[..., :1] >= 0).to(meshes.verts_packed().dtype)
        if not self.with_rgb:
            return antialias_render(covered, fragments, meshes, cameras)[..., 0], None
        rgb = _shade(self.color, fragments, meshes, cameras, self.lit)
        out = antialias_render(torch.cat([covered, rgb], -1), fragments, meshes, cameras)
        return out[..., 0], out[..., 1:]


@torch.no_grad()
def render_mesh_views(mesh: Meshes, cameras: CamerasBase, image_size: int,
                      lit: bool) -> torch.Tensor:
    """Hard Phong renders (N, S, S, 3) in [0, 1] of one textured mesh (previews, frames)."""
    return render_hard(mesh, cameras, image_size, lit)[0][..., :3].clamp(0, 1)


def resize_images(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """(N, H, W, C) -> (N, h, w, C): area-averaged when shrinking (soft, antialiased
    targets), bilinear when growing; unchanged when already that size."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[1:3]) == size:
        return images
    x = images.permute(0, 3, 1, 2)
    mode = "area" if size[0] < images.shape[1] else "bilinear"
    x = F.interpolate(x, size=size, mode=mode, align_corners=None)
    return x.permute(0, 2, 3, 1).contiguous()


def snapshot_indices(n_views: int, n_snap: int) -> list[int]:
    """``min(n_snap, n_views)`` view indices spread evenly (the views a progress animation
    shows)."""
    n = min(n_snap, n_views)
    return [round(i * n_views / n) for i in range(n)]


def check_views(data: MultiViewData) -> tuple[int, int]:
    """``(N, S)`` of square, non-empty, finite views, which the fitting jobs need.

    Raises:
        ValueError: not a MultiViewData, non-square images, masks empty in every view,
            NaN or inf.
    """
    if not isinstance(data, MultiViewData):
        raise ValueError("data must be a MultiViewData (see diffrend.io.load_views)")
    n_views, height, width = data.masks.shape
    if height != width:
        raise ValueError(f"data: images must be square, got {height}x{width}")
    if not bool((data.masks.flatten(1).amax(1) > 0).any()):
        raise ValueError("data.masks are empty in every view: nothing to fit")
    if not (torch.isfinite(data.images).all() and torch.isfinite(data.masks).all()):
        raise ValueError("data.images / data.masks hold NaN or inf")
    return n_views, height

"""2D Gaussian splatting (surfels; Huang et al. 2024), gsplat's ``rasterization_2dgs``.

A surfel is a flat Gaussian disc: a centre, a wxyz rotation whose third axis is the normal, and
two linear scales along the first two axes (a third scale, if given, is ignored). The stages:

* :func:`project_surfels` (pure torch): per camera, the ray transform T = K [s_u R_u, s_v R_v,
  p] that maps the surfel's local (u, v, 1) to homogeneous pixels, the screen centre, a
  bounding box that holds every pixel the compositor can light (exact for the 3.33-sigma disc
  under perspective, plus the low-pass filter's disc), the centre's depth and the normal
  facing the camera;
* :func:`.intersect.isect_tiles` / :func:`.intersect.isect_offset_encode`, shared with 3DGS;
* :func:`rasterize_to_pixels_2dgs`: per pixel, the ray-plane intersection in the surfel's
  (u, v), the Gaussian there bounded below by a screen-space filter, front-to-back alpha with
  early termination, alpha-weighted normals, the median depth and the distortion (Numba
  kernels on the CPU, :mod:`.twodgs_reference` the torch twin);
* :func:`depth_to_normal`: normals of a rendered depth map by finite differences.

:func:`rasterization_2dgs` chains them with gsplat's arguments and return value.
"""

from __future__ import annotations

import importlib
import math
import numbers
from typing import Any

import torch

from ..raster.backends import check_backend_name, resolve_backend
from .api import RENDER_MODES, _check_inputs, _check_positive_int, camera_colors
from .composite import _check_inputs as _check_composite_inputs
from .intersect import isect_offset_encode, isect_tiles
from .memory import check_splat_memory
from .projection import EXTENT_SIGMAS, MAX_RADIUS, quat_to_rotmat
from .twodgs_reference import FILTER_INV_SQUARE, rasterize_to_pixels_2dgs_reference

DEPTH_MODES = ("expected", "median")
# The low-pass filter lights pixels with |d|^2 <= ln(255) (sigma = |d|^2 <= ln(255 op)).
FILTER_RADIUS = math.sqrt(math.log(255.0) * 2.0 / FILTER_INV_SQUARE)


def project_surfels(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Projects N surfels into C pinhole cameras (gsplat's ``fully_fused_projection_2dgs``).

    Args:
        means: (N, 3) world-space centres.
        quats: (N, 4) wxyz rotations (normalised here; non-zero); the rotation's third
            column is the normal.
        scales: (N, 2) or (N, 3) linear scales; only the first two are used.
        viewmats: (C, 4, 4) world-to-camera (OpenCV axes); Ks: (C, 3, 3) intrinsics.
        width, height: the image size in pixels.
        near_plane, far_plane: surfels whose centre depth is not strictly between are culled.
        radius_clip: surfels whose box is at most this many pixels (both axes) are culled.

    Returns:
        radii: (C, N, 2) int32 half extents around ``means2d`` holding every pixel where the
            surfel's alpha can reach 1/255: the box of the 3.33-sigma disc's image (the
            whole image plane, clamped, where that disc reaches the camera plane) joined with
            the filter's disc; 0 where culled (depth, size or off the image). Not
            differentiable.
        means2d: (C, N, 2) the projected centres in pixels (also the filter's centre).
        depths: (C, N) the centres' camera z.
        ray_transforms: (C, N, 3, 3) T = K [s_u R_u, s_v R_v, p] in camera space (columns).
        normals: (C, N, 3) camera-space unit normals, flipped to face the camera.
        The float outputs are differentiable in means, quats, scales, viewmats and Ks (finite
        for culled surfels too).
    """
    if means.dim() != 2 or means.shape[-1] != 3:
        raise ValueError(f"means must have shape (N, 3), got {tuple(means.shape)}")
    n = means.shape[0]
    if scales.dim() != 2 or scales.shape[0] != n or scales.shape[1] not in (2, 3):
        raise ValueError(f"scales must have shape ({n}, 2) or ({n}, 3), got "
                         f"{tuple(scales.shape)}")
    if quats.shape != (n, 4):
        raise ValueError(f"quats must have shape ({n}, 4), got {tuple(quats.shape)}")
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4):
        raise ValueError(f"viewmats must have shape (C, 4, 4), got {tuple(viewmats.shape)}")
    c = viewmats.shape[0]
    if Ks.shape != (c, 3, 3):
        raise ValueError(f"Ks must have shape ({c}, 3, 3), got {tuple(Ks.shape)}")
    if n and bool((quats == 0).all(dim=-1).any()):
        raise ValueError("quats must be non-zero (a zero quaternion has no rotation)")

    rot_w = quat_to_rotmat(quats)  # (N, 3, 3)
    rot = viewmats[:, :3, :3]  # (C, 3, 3)
    means_c = torch.einsum("cij,nj->cni", rot, means) + viewmats[:, None, :3, 3]  # (C, N, 3)
    axes_c = torch.einsum("cij,njk->cnik", rot, rot_w)  # (C, N, 3, 3) rotation in camera
    tu = axes_c[..., 0] * scales[None, :, 0:1]  # (C, N, 3)
    tv = axes_c[..., 1] * scales[None, :, 1:2]
    t_cam = torch.stack((tu, tv, means_c), dim=-1)  # (C, N, 3, 3): columns
    ray_transforms = Ks[:, None] @ t_cam

    normals = axes_c[..., 2]
    facing = (normals * means_c).sum(-1, keepdim=True) < 0.0
    normals = torch.where(facing, normals, -normals)

    depths = means_c[..., 2]
    in_depth = (depths > near_plane) & (depths < far_plane)
    z_safe = torch.where(in_depth, depths, torch.ones_like(depths))
    means2d = ray_transforms[..., :2, 2] / z_safe[..., None]

    with torch.no_grad():
        # The image of the disc u^2 + v^2 <= r^2 has the dual conic T diag(r^2, r^2, -1) T^T;
        # its tangent lines x = X solve q00 - 2 X q02 + X^2 q22 = 0 (and likewise for y).
        # q22 < 0 exactly when the whole disc lies in front of the camera plane.
        t = ray_transforms.detach().to(torch.float64)
        r2 = EXTENT_SIGMAS**2
        q = r2 * (t[..., :, 0:1] * t[..., None, :, 0] + t[..., :, 1:2] * t[..., None, :, 1])
        q = q - t[..., :, 2:3] * t[..., None, :, 2]  # (C, N, 3, 3)
        q22 = q[..., 2, 2]
        bounded = q22 < 0.0
        q22s = torch.where(bounded, q22, -torch.ones_like(q22))
        centre = q[..., :2, 2] / q22s[..., None]  # (C, N, 2)
        half = torch.sqrt((centre**2 - torch.diagonal(q, dim1=-2, dim2=-1)[..., :2]
                           / q22s[..., None]).clamp_min(0.0))
        m2 = means2d.detach().to(torch.float64)
        ext = torch.maximum((centre - m2).abs() + half, torch.full_like(half, FILTER_RADIUS))
        ext = torch.where(bounded[..., None], ext, torch.full_like(ext, MAX_RADIUS))
        ext = torch.where(torch.isfinite(ext), ext, torch.full_like(ext, MAX_RADIUS))
        ext = ext.clamp(max=MAX_RADIUS)
        big = ext.amax(dim=-1) > radius_clip
        on_image = (
            (m2[..., 0] + ext[..., 0] > 0) & (m2[..., 0] - ext[..., 0] < width)
            & (m2[..., 1] + ext[..., 1] > 0) & (m2[..., 1] - ext[..., 1] < height)
        )  # fmt: skip
        keep = in_depth & big & on_image & torch.isfinite(m2).all(dim=-1)
        radii = torch.where(keep[..., None], torch.ceil(ext), torch.zeros_like(ext))
        radii = radii.to(torch.int32)
    return radii, means2d, depths, ray_transforms, normals


def _check_compositor_inputs(
    means2d: torch.Tensor,
    ray_transforms: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    normals: torch.Tensor,
    depths: torch.Tensor,
    image_width: int,
    image_height: int,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
    backgrounds: torch.Tensor | None,
) -> None:
    """ValueError naming the argument unless the compositor's inputs fit together."""
    c, n = means2d.shape[:2] if means2d.dim() == 3 else (-1, -1)
    # (the 3DGS checks cover means2d, colors, opacities, sizes, offsets and ids; a (C, N, 3)
    # stand-in passes for the conics)
    _check_composite_inputs(
        means2d, means2d.new_zeros(max(c, 0), max(n, 0), 3) if c >= 0 else means2d, colors,
        opacities, image_width, image_height, tile_size, isect_offsets, flatten_ids,
        backgrounds,
    )
    for name, t, shape in (("ray_transforms", ray_transforms, (c, n, 3, 3)),
                           ("normals", normals, (c, n, 3)), ("depths", depths, (c, n))):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
        if t.dtype != means2d.dtype or t.device != means2d.device:
            raise ValueError(f"{name} must have the dtype and device of means2d")


def rasterize_to_pixels_2dgs(
    means2d: torch.Tensor,
    ray_transforms: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    normals: torch.Tensor,
    depths: torch.Tensor,
    image_width: int,
    image_height: int,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
    backgrounds: torch.Tensor | None = None,
    distloss: bool = False,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Alpha-composite depth-sorted surfels into C images, front to back.

    The per-pixel rule is in :mod:`.twodgs_reference`: the ray of pixel centre (x + 0.5,
    y + 0.5) meets the surfel's plane at (u, v); sigma = 0.5 min(u^2 + v^2, 2 |pixel -
    means2d|^2) (the 3D term only where the plane is met in front of the camera);
    alpha = min(0.999, opacity exp(-sigma)); skip below 1/255; stop before T reaches 1e-4.

    Args:
        means2d: (C, N, 2); ray_transforms: (C, N, 3, 3); colors: (C, N, D); opacities:
            (C, N); normals: (C, N, 3) camera space; depths: (C, N) (see
            :func:`project_surfels`); one float dtype and device.
        image_width, image_height, tile_size: positive ints.
        isect_offsets: (C, TH, TW), flatten_ids: (M,) from :func:`.intersect.isect_tiles`.
        backgrounds: (C, D) or None.
        distloss: also compute the distortion map (else it is None).
        backend: "auto" (Numba for CPU tensors, the reference elsewhere), "numba" or
            "reference" ("triton" raises: there is no Triton surfel kernel).

    Returns:
        render_colors (C, H, W, D), render_alphas (C, H, W, 1), render_normals (C, H, W, 3)
        camera space, render_distort (C, H, W, 1) or None, render_median (C, H, W, 1).
        Differentiable in means2d, ray_transforms, colors, opacities, normals, depths and
        backgrounds; not in the lists.

    Raises:
        ValueError: naming the argument, for wrong shapes, dtypes, devices, sizes, offsets or
            ids, or an unknown or unavailable backend.
    """
    _check_compositor_inputs(
        means2d, ray_transforms, colors, opacities, normals, depths, image_width,
        image_height, tile_size, isect_offsets, flatten_ids, backgrounds,
    )
    if not isinstance(distloss, bool):
        raise ValueError(f"distloss must be a bool, got {distloss!r}")
    check_backend_name(backend)
    if backend == "triton":
        raise ValueError("backend='triton' has no surfel kernel; use 'auto', 'numba' or "
                         "'reference'")
    chosen = resolve_backend(backend, means2d.device)
    width, height, tile_size = int(image_width), int(image_height), int(tile_size)
    if chosen != "numba":
        return rasterize_to_pixels_2dgs_reference(
            means2d, ray_transforms, colors, opacities, normals, depths, width, height,
            tile_size, isect_offsets, flatten_ids, backgrounds, distloss,
        )
    kernels = importlib.import_module(f"{__package__}.twodgs_numba")
    rgb, alphas, nrm, distort, median = _KernelComposite2DGS.apply(
        kernels, means2d, ray_transforms, colors, opacities, normals, depths, backgrounds,
        width, height, tile_size, isect_offsets, flatten_ids, distloss,
    )
    return rgb, alphas, nrm, (distort if distloss else None), median


class _KernelComposite2DGS(torch.autograd.Function):
    """Autograd glue around :mod:`.twodgs_numba` (``forward`` / ``backward``):
    (kernels, means2d, ray_transforms, colors, opacities, normals, depths, backgrounds or
    None, W, H, tile_size, isect_offsets, flatten_ids, distloss) -> (colors with background,
    alphas, normals, distortion (zeros unless distloss), median)."""

    @staticmethod
    def forward(ctx, kernels, means2d, ray_transforms, colors, opacities, normals, depths,
                backgrounds, width, height, tile_size, isect_offsets, flatten_ids, distloss):
        feats, t_final, last, median, median_ids, distort, acc_wd = kernels.forward(
            means2d, ray_transforms, torch.cat([colors, normals], -1), opacities, depths,
            width, height, tile_size, isect_offsets, flatten_ids, distloss,
        )
        D = colors.shape[-1]
        dtype = means2d.dtype
        t_out = t_final.to(dtype)[..., None]
        rgb = feats[..., :D].contiguous()
        if backgrounds is not None:
            rgb = rgb + t_out * backgrounds[:, None, None, :]
        ctx.save_for_backward(
            means2d, ray_transforms, colors, normals, opacities, depths, backgrounds,
            isect_offsets, flatten_ids, t_final, last, median_ids, acc_wd,
        )
        ctx.kernels, ctx.tile_size, ctx.distloss = kernels, tile_size, distloss
        return (rgb, 1.0 - t_out, feats[..., D:].contiguous(), distort.to(dtype)[..., None],
                median.to(dtype)[..., None])

    @staticmethod
    def backward(ctx, v_colors, v_alphas, v_normals, v_distort, v_median):
        (means2d, ray_transforms, colors, normals, opacities, depths, backgrounds,
         isect_offsets, flatten_ids, t_final, last, median_ids, acc_wd) = ctx.saved_tensors
        D = colors.shape[-1]
        v_feats = torch.cat([v_colors, v_normals], -1)
        g_mean, g_rt, g_feat, g_opac, g_depth = ctx.kernels.backward(
            means2d, ray_transforms, torch.cat([colors, normals], -1), opacities, depths,
            ctx.tile_size, isect_offsets, flatten_ids, backgrounds, t_final, last, median_ids,
            acc_wd, v_feats, v_alphas, v_distort if ctx.distloss else None, v_median,
        )
        g_bg = None
        if backgrounds is not None and ctx.needs_input_grad[7]:
            g_bg = (t_final[..., None] * v_colors.to(t_final.dtype)).sum((1, 2))
            g_bg = g_bg.to(backgrounds.dtype)
        return (None, g_mean, g_rt, g_feat[..., :D], g_opac, g_feat[..., D:], g_depth, g_bg,
                None, None, None, None, None, None)


def depth_to_normal(depths: torch.Tensor, viewmats: torch.Tensor, Ks: torch.Tensor
                    ) -> torch.Tensor:
    """World-space normals of z-depth maps by central differences (gsplat's
    ``depth_to_normal``).

    Each pixel centre is lifted to its world point p = origin + z R^T K^-1 (x + 0.5, y + 0.5,
    1); the normal is normalize((p[y+1] - p[y-1]) x (p[x+1] - p[x-1])), which faces the camera
    for a surface seen from the front; the one-pixel border is 0.

    Args:
        depths: (C, H, W, 1) camera z per pixel.
        viewmats: (C, 4, 4) world-to-camera; Ks: (C, 3, 3).

    Returns:
        (C, H, W, 3) unit normals (0 on the border and where the differences vanish),
        differentiable in depths, viewmats and Ks.
    """
    c, h, w = depths.shape[:3]
    cam_to_world = torch.linalg.inv(viewmats)
    ys, xs = torch.meshgrid(torch.arange(h, device=depths.device, dtype=depths.dtype) + 0.5,
                            torch.arange(w, device=depths.device, dtype=depths.dtype) + 0.5,
                            indexing="ij")
    fx, fy = Ks[:, 0, 0, None, None], Ks[:, 1, 1, None, None]
    cx, cy = Ks[:, 0, 2, None, None], Ks[:, 1, 2, None, None]
    rays = torch.stack(((xs - cx) / fx, (ys - cy) / fy, torch.ones_like(xs).expand(c, h, w)),
                       dim=-1)  # (C, H, W, 3) camera space, z = 1
    rays = torch.einsum("cij,chwj->chwi", cam_to_world[:, :3, :3], rays)
    points = cam_to_world[:, None, None, :3, 3] + depths * rays
    down = points[:, 2:, 1:-1] - points[:, :-2, 1:-1]
    right = points[:, 1:-1, 2:] - points[:, 1:-1, :-2]
    nrm = torch.nn.functional.normalize(torch.linalg.cross(down, right, dim=-1), dim=-1)
    return torch.nn.functional.pad(nrm, (0, 0, 1, 1, 1, 1))


def rasterization_2dgs(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    radius_clip: float = 0.0,
    eps2d: float = 0.3,
    sh_degree: int | None = None,
    packed: bool = False,
    tile_size: int = 16,
    backgrounds: torch.Tensor | None = None,
    render_mode: str = "RGB",
    sparse_grad: bool = False,
    absgrad: bool = False,
    distloss: bool = False,
    depth_mode: str = "expected",
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None,
           torch.Tensor | None, torch.Tensor, dict[str, Any]]:
    """Renders N surfels (2D Gaussians) into C pinhole cameras (gsplat's
    ``rasterization_2dgs``).

    Args:
        means: (N, 3) world-space centres, finite.
        quats: (N, 4) wxyz rotations (any non-zero length); the third axis is the normal.
        scales: (N, 3) as gsplat (the third is ignored) or (N, 2) linear scales, >= 0.
        opacities: (N,) in [0, 1].
        colors: (N, D) or (C, N, D) colours when ``sh_degree`` is None; else (N, K, 3) or
            (C, N, K, 3) SH coefficients (as :func:`.api.rasterization`).
        viewmats: (C, 4, 4) world-to-camera (OpenCV axes); Ks: (C, 3, 3) pinhole intrinsics.
        width, height: image size in pixels.
        near_plane, far_plane: surfels whose centre depth is outside are culled.
        radius_clip: surfels at most this many pixels wide are culled.
        eps2d: accepted for gsplat compatibility and unused (as in gsplat's 2DGS, the
            screen-space filter is fixed: exp(-|d|^2), 1/sqrt(2) pixel).
        sh_degree: the SH degree to evaluate, or None for plain colours.
        packed, sparse_grad: accepted for gsplat compatibility; the layout is always dense.
        tile_size: tile side in pixels.
        backgrounds: optional (C, D) colour behind the surfels.
        render_mode: "RGB", "D", "ED", "RGB+D" or "RGB+ED" (depth = the centres' camera z,
            composited as a last channel, "E" modes divided by alpha).
        absgrad: accepted for gsplat compatibility; ``meta["means2d"]`` has no ``absgrad``.
        distloss: compute ``render_distort`` (else None).
        depth_mode: "expected" or "median": the depth that ``surf_normals`` is taken from.
        backend: the intersection's and compositor's kernels: "auto", "numba" or
            "reference" (the torch twin).

    Returns:
        render_colors: (C, H, W, D') as :func:`.api.rasterization`.
        render_alphas: (C, H, W, 1).
        render_normals: (C, H, W, 3) alpha-weighted surfel normals, in world space.
        surf_normals: (C, H, W, 3) world-space normals of the rendered depth (expected or
            median by ``depth_mode``, by :func:`depth_to_normal`) for "RGB+D" and "RGB+ED";
            None for the other modes (as gsplat).
        render_distort: (C, H, W, 1) the distortion sum_ij w_i w_j |z_i - z_j| of the
            centres' depths when ``distloss``, else None.
        render_median: (C, H, W, 1) the depth of the last surfel entered with T > 0.5 (0
            where none).
        meta: gsplat's keys: camera_ids, gaussian_ids (None), radii, means2d, depths,
            ray_transforms, opacities, normals (camera space), tile_width, tile_height,
            tiles_per_gauss, isect_ids, flatten_ids, isect_offsets, width, height,
            tile_size, n_cameras, render_distort, and gradient_2dgs: a (C, N, 2) zero leaf
            whose ``.grad`` after backward is gsplat's densification gradient (the loss's
            gradient in the homogeneous centre column of the ray transform, times depth).
        Differentiable in means, quats, scales, opacities, colors, viewmats, Ks and
        backgrounds.

    Raises:
        ValueError: as :func:`.api.rasterization` (shapes, NaN or inf, negative scales, zero
            quaternions, opacities outside [0, 1], an SH count that does not match
            ``sh_degree``, a bad size or mode), or an unknown ``depth_mode``.
    """
    width = _check_positive_int(width, "width")
    height = _check_positive_int(height, "height")
    tile_size = _check_positive_int(tile_size, "tile_size")
    if render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    if depth_mode not in DEPTH_MODES:
        raise ValueError(f"depth_mode must be one of {DEPTH_MODES}, got {depth_mode!r}")
    check_backend_name(backend)
    for name, flag in (("packed", packed), ("sparse_grad", sparse_grad),
                       ("absgrad", absgrad), ("distloss", distloss)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be a bool, got {flag!r}")
    for name, v in (("near_plane", near_plane), ("far_plane", far_plane),
                    ("radius_clip", radius_clip), ("eps2d", eps2d)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or math.isnan(v):
            raise ValueError(f"{name} must be a number, got {v!r}")
    if not isinstance(scales, torch.Tensor):
        raise ValueError(f"scales must be a torch.Tensor, got {type(scales).__name__}")
    n = means.shape[0] if isinstance(means, torch.Tensor) and means.dim() == 2 else -1
    if scales.dim() == 2 and scales.shape == (n, 2):
        scales3 = torch.cat([scales, scales[:, 1:]], -1)  # (only checked, never used)
    else:
        scales3 = scales
    _check_inputs(means, quats, scales3, opacities, colors, viewmats, Ks, sh_degree,
                  backgrounds)
    c = viewmats.shape[0]
    channels = {"RGB": 3, "D": 1, "ED": 1}.get(render_mode, 4)
    if sh_degree is None and render_mode not in ("D", "ED"):
        channels = colors.shape[-1] + (render_mode != "RGB")
    check_splat_memory(c, n, height, width, channels + 6, means.dtype, means.device)

    radii, means2d, depths, ray_transforms, normals = project_surfels(
        means, quats, scales, viewmats, Ks, width, height, near_plane=near_plane,
        far_plane=far_plane, radius_clip=radius_clip,
    )  # fmt: skip
    opac = opacities[None].expand(c, n)
    cols, bgs = camera_colors(means, colors, viewmats, radii, depths, sh_degree, backgrounds,
                              render_mode)

    tile_width = math.ceil(width / tile_size)
    tile_height = math.ceil(height / tile_size)
    tiles_per_gauss, isect_ids, flatten_ids = isect_tiles(
        means2d, radii, depths, tile_size, tile_width, tile_height, backend=backend
    )
    check_splat_memory(c, n, height, width, channels + 6, means.dtype, means.device,
                       n_isects=flatten_ids.shape[0])
    isect_offsets = isect_offset_encode(isect_ids, c, tile_width, tile_height)
    # gsplat's densification signal: a zero (C, N, 2) leaf added to the ray transforms' centre
    # column times the depth, so its gradient is dL/dT[:2, 2] z (the 2D centre's gradient
    # through the ray-plane intersection); the values are unchanged.
    # (a leaf that needs a gradient only when the geometry does, so that renders of constant
    # scenes carry no graph)
    needs = torch.is_grad_enabled() and any(
        t.requires_grad for t in (means, quats, scales, viewmats, Ks))
    densify = torch.zeros_like(means2d, requires_grad=needs)
    shift = torch.nn.functional.pad((densify * depths.detach()[..., None])[..., None],
                                    (2, 0, 0, 1))  # (C, N, 3, 3): only T[0, 2] and T[1, 2]
    render_colors, render_alphas, render_normals, render_distort, render_median = (
        rasterize_to_pixels_2dgs(
            means2d, ray_transforms + shift, cols.contiguous(), opac.contiguous(), normals, depths,
            width, height, tile_size, isect_offsets, flatten_ids, backgrounds=bgs,
            distloss=distloss, backend=backend,
        )
    )  # fmt: skip
    if render_mode in ("ED", "RGB+ED"):
        expected = render_colors[..., -1:] / render_alphas.clamp_min(1e-10)
        render_colors = torch.cat((render_colors[..., :-1], expected), dim=-1)
    surf_normals = None
    if render_mode in ("RGB+D", "RGB+ED"):
        depth_for_normal = render_median if depth_mode == "median" else render_colors[..., -1:]
        surf_normals = depth_to_normal(depth_for_normal, viewmats, Ks)
    cam_to_world = torch.linalg.inv(viewmats)[:, :3, :3]
    render_normals = torch.einsum("cij,chwj->chwi", cam_to_world, render_normals)

    meta: dict[str, Any] = {
        "camera_ids": None,
        "gaussian_ids": None,
        "radii": radii,
        "means2d": means2d,
        "depths": depths,
        "ray_transforms": ray_transforms,
        "opacities": opac,
        "normals": normals,
        "tile_width": tile_width,
        "tile_height": tile_height,
        "tiles_per_gauss": tiles_per_gauss,
        "isect_ids": isect_ids,
        "flatten_ids": flatten_ids,
        "isect_offsets": isect_offsets,
        "width": width,
        "height": height,
        "tile_size": tile_size,
        "n_cameras": c,
        "render_distort": render_distort,
        "gradient_2dgs": densify,
    }
    return (render_colors, render_alphas, render_normals, surf_normals, render_distort,
            render_median, meta)

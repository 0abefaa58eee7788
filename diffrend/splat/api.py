"""``rasterization``: gsplat's entry point for rendering 3D Gaussians, built from the stages.

Projection (:mod:`.projection`), view-dependent colour (:mod:`.sh`), tile intersection
(:mod:`.intersect`) and front-to-back compositing (:mod:`.composite`), with gsplat's argument
names, shapes and conventions (OpenCV cameras, world-to-camera ``viewmats``, wxyz quaternions,
linear scales, opacities in [0, 1]).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from diffrend.raster.backends import check_backend_name

from .composite import rasterize_to_pixels
from .intersect import isect_offset_encode, isect_tiles
from .memory import check_splat_memory
from .projection import CAMERA_MODELS, project_gaussians
from .sh import MAX_SH_DEGREE, num_sh_bases, spherical_harmonics

RENDER_MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")
RASTERIZE_MODES = ("classic", "antialiased")


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _check_finite(t: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")


def _check_number(value: Any, name: str, low: float, allow_inf: bool = False) -> float:
    """A real number >= ``low`` (finite unless ``allow_inf``); raises ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not (allow_inf and v > 0)) or v < low:
        bound = f">= {low:g}" + (" (inf allowed)" if allow_inf else ", finite")
        raise ValueError(f"{name} must be a number {bound}, got {value!r}")
    return v


def _check_inputs(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    opacities: torch.Tensor,
    colors: torch.Tensor,
    viewmats: torch.Tensor,
    Ks: torch.Tensor,
    sh_degree: int | None,
    backgrounds: torch.Tensor | None,
) -> None:
    """Shapes and values of rasterization's tensors; raises ValueError naming the argument."""
    tensors = dict(means=means, quats=quats, scales=scales, opacities=opacities, colors=colors,
                   viewmats=viewmats, Ks=Ks)  # fmt: skip
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if means.dim() != 2 or means.shape[1] != 3:
        raise ValueError(f"means must have shape (N, 3), got {tuple(means.shape)}")
    n = means.shape[0]
    if quats.shape != (n, 4):
        raise ValueError(f"quats must have shape ({n}, 4), got {tuple(quats.shape)}")
    if scales.shape != (n, 3):
        raise ValueError(f"scales must have shape ({n}, 3), got {tuple(scales.shape)}")
    if opacities.shape != (n,):
        raise ValueError(f"opacities must have shape ({n},), got {tuple(opacities.shape)}")
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4):
        raise ValueError(f"viewmats must have shape (C, 4, 4), got {tuple(viewmats.shape)}")
    c = viewmats.shape[0]
    if c < 1:
        raise ValueError("viewmats must hold at least one camera")
    if Ks.shape != (c, 3, 3):
        raise ValueError(f"Ks must have shape ({c}, 3, 3), got {tuple(Ks.shape)}")
    for name, t in tensors.items():
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")
        if t.dtype != means.dtype or t.device != means.device:
            raise ValueError(
                f"{name} is {t.dtype} on {t.device}, means is {means.dtype} on {means.device}: "
                "they must match"
            )
        _check_finite(t, name)
    if bool((scales < 0).any()):
        raise ValueError("scales must be >= 0 (linear scales, not logs)")
    if n and bool((quats == 0).all(dim=-1).any()):
        raise ValueError("quats must be non-zero (a zero quaternion has no rotation)")
    if c and bool(((Ks[:, 0, 0] <= 0) | (Ks[:, 1, 1] <= 0)).any()):
        raise ValueError("Ks must have positive focal lengths (Ks[:, 0, 0] and Ks[:, 1, 1])")
    if bool(((opacities < 0) | (opacities > 1)).any()):
        raise ValueError("opacities must lie in [0, 1] (apply a sigmoid to logits first)")
    if sh_degree is None:
        if colors.dim() == 2 and colors.shape[0] == n:
            d = colors.shape[1]
        elif colors.dim() == 3 and colors.shape[:2] == (c, n):
            d = colors.shape[2]
        else:
            raise ValueError(
                f"colors must have shape ({n}, D) or ({c}, {n}, D) when sh_degree is None, "
                f"got {tuple(colors.shape)}"
            )
    else:
        if isinstance(sh_degree, bool) or not isinstance(sh_degree, int):
            raise ValueError(f"sh_degree must be an int or None, got {sh_degree!r}")
        if not 0 <= sh_degree <= MAX_SH_DEGREE:
            raise ValueError(f"sh_degree must be in 0..{MAX_SH_DEGREE}, got {sh_degree}")
        ok_shape = (colors.dim() == 3 and colors.shape[0] == n) or (
            colors.dim() == 4 and colors.shape[:2] == (c, n)
        )
        if not ok_shape or colors.shape[-1] != 3:
            raise ValueError(
                f"colors must have shape ({n}, K, 3) or ({c}, {n}, K, 3) SH coefficients when "
                f"sh_degree is given, got {tuple(colors.shape)}"
            )
        k = colors.shape[-2]
        stored = math.isqrt(k) - 1
        if num_sh_bases(stored) != k or stored > MAX_SH_DEGREE or sh_degree > stored:
            raise ValueError(
                f"colors has {k} SH coefficients per channel, which does not match "
                f"sh_degree={sh_degree} (expected (d + 1)^2 for a degree d in "
                f"{sh_degree}..{MAX_SH_DEGREE})"
            )
        d = 3
    if backgrounds is not None:
        if not isinstance(backgrounds, torch.Tensor) or backgrounds.shape != (c, d):
            shape = tuple(backgrounds.shape) if isinstance(backgrounds, torch.Tensor) else None
            raise ValueError(f"backgrounds must have shape ({c}, {d}), got {shape}")
        if backgrounds.dtype != means.dtype or backgrounds.device != means.device:
            raise ValueError("backgrounds must have the dtype and device of means")
        _check_finite(backgrounds, "backgrounds")


def camera_colors(
    means: torch.Tensor,
    colors: torch.Tensor,
    viewmats: torch.Tensor,
    radii: torch.Tensor,
    depths: torch.Tensor,
    sh_degree: int | None,
    backgrounds: torch.Tensor | None,
    render_mode: str,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What each camera composites per primitive, and its background, for a render mode.

    Plain colours (N, D) / (C, N, D) are used as they are; SH coefficients (N, K, 3) /
    (C, N, K, 3) are evaluated along each camera's view directions (the camera centre is
    ``-R^T t`` of its world-to-camera matrix), plus 0.5 and clamped at 0, for primitives
    with ``radii > 0``. ``"RGB+D"``/``"RGB+ED"`` append the depth as a last channel (its
    background 0); ``"D"``/``"ED"`` composite the depth alone (no background).

    Args:
        means: (N, 3). colors: as above. viewmats: (C, 4, 4). radii: (C, N, 2) (0: culled).
        depths: (C, N). sh_degree: None for plain colours. backgrounds: (C, D) or None.
        render_mode: one of :data:`RENDER_MODES`.

    Returns:
        ``(colors (C, N, D'), backgrounds (C, D') or None)``; differentiable in means,
        colors, viewmats, depths and backgrounds.
    """
    c, n = depths.shape
    if sh_degree is None:
        cols = colors if colors.dim() == 3 else colors[None].expand(c, n, colors.shape[-1])
    else:
        rot, trans = viewmats[:, :3, :3], viewmats[:, :3, 3]
        centres = -(rot.transpose(-1, -2) @ trans[..., None])[..., 0]  # (C, 3)
        dirs = means[None] - centres[:, None]  # (C, N, 3)
        coeffs = colors if colors.dim() == 4 else colors[None]
        visible = (radii > 0).all(dim=-1)
        cols = torch.clamp_min(spherical_harmonics(sh_degree, dirs, coeffs, masks=visible)
                               + 0.5, 0.0)
    bgs = backgrounds
    if render_mode in ("RGB+D", "RGB+ED"):
        cols = torch.cat((cols, depths[..., None]), dim=-1)
        if bgs is not None:
            bgs = torch.cat((bgs, bgs.new_zeros(c, 1)), dim=-1)
    elif render_mode in ("D", "ED"):
        cols, bgs = depths[..., None], None
    return cols, bgs


def rasterization(
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
    rasterize_mode: str = "classic",
    camera_model: str = "pinhole",
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Renders N 3D Gaussians into C cameras (gsplat's ``rasterization``).

    Args:
        means: (N, 3) world-space centres, finite.
        quats: (N, 4) wxyz rotations, any non-zero length.
        scales: (N, 3) linear scales (standard deviations), >= 0.
        opacities: (N,) in [0, 1].
        colors: (N, D) or (C, N, D) colours when ``sh_degree`` is None; else (N, K, 3) or
            (C, N, K, 3) SH coefficients with K = (d + 1)^2 for some d >= sh_degree (the first
            (sh_degree + 1)^2 are used), evaluated towards each camera, +0.5, clamped at 0.
        viewmats: (C, 4, 4) world-to-camera (OpenCV: x right, y down, z forward).
        Ks: (C, 3, 3) pinhole intrinsics in pixels (fx, fy, cx, cy).
        width, height: image size in pixels.
        near_plane, far_plane: depth range; Gaussians outside are culled.
        radius_clip: Gaussians at most this many pixels wide are culled.
        eps2d: 2D covariance dilation (pixels^2).
        sh_degree: the SH degree to evaluate, or None for plain colours.
        packed: accepted for gsplat compatibility; the outputs always use the dense (C, N)
            layout (``meta["gaussian_ids"]`` is None).
        tile_size: tile side in pixels.
        backgrounds: optional (C, D) colour behind the Gaussians (D = 3 with SH; the depth
            channel of "+D" modes gets a 0 background, depth-only modes none).
        render_mode: "RGB", "D" (accumulated depth), "ED" (expected depth = D / alpha),
            "RGB+D" or "RGB+ED" (depth as a last channel).
        rasterize_mode: "classic" or "antialiased" (opacities times the projection's
            compensation factor, as in Mip-Splatting).
        camera_model: "pinhole" or "ortho".
        backend: the tile intersection's and compositor's kernels: "auto", "numba",
            "reference" (the torch twins) or "triton".

    Returns:
        render_colors: (C, height, width, D') with D' = D, 1 or D + 1 by ``render_mode``.
        render_alphas: (C, height, width, 1).
        meta: gsplat's keys: camera_ids/gaussian_ids (None: dense layout), radii (C, N, 2),
            means2d (C, N, 2) (the tensor the compositor used: ``retain_grad()`` on it gives
            the 2D-mean gradients densification needs), depths, conics, opacities (C, N)
            (after the antialiased compensation), tile_width, tile_height, tiles_per_gauss,
            isect_ids, flatten_ids, isect_offsets, width, height, tile_size, n_cameras.
        Differentiable in means, quats, scales, opacities, colors, viewmats and backgrounds.

    Raises:
        ValueError: malformed shapes, NaN or inf values, negative scales, zero quaternions,
            opacities outside [0, 1], focal lengths that are not positive, an SH coefficient
            count that does not match ``sh_degree``, an unknown mode or camera model, a bad
            size or tile size, or near/far planes, ``radius_clip`` or ``eps2d`` that are
            negative, NaN or out of order.
        SplatMemoryError: (a ValueError) the frame would need more memory than the budget
            (see :mod:`.memory`).
    """
    width = _check_positive_int(width, "width")
    height = _check_positive_int(height, "height")
    tile_size = _check_positive_int(tile_size, "tile_size")
    if render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode must be one of {RENDER_MODES}, got {render_mode!r}")
    if rasterize_mode not in RASTERIZE_MODES:
        raise ValueError(
            f"rasterize_mode must be one of {RASTERIZE_MODES}, got {rasterize_mode!r}"
        )
    if camera_model not in CAMERA_MODELS:
        raise ValueError(f"camera_model must be one of {CAMERA_MODELS}, got {camera_model!r}")
    check_backend_name(backend)
    if not isinstance(packed, bool):
        raise ValueError(f"packed must be a bool, got {packed!r}")
    near_plane = _check_number(near_plane, "near_plane", 0.0)
    far_plane = _check_number(far_plane, "far_plane", 0.0, allow_inf=True)
    if not far_plane > near_plane:
        raise ValueError(f"far_plane ({far_plane:g}) must be greater than near_plane "
                         f"({near_plane:g})")
    radius_clip = _check_number(radius_clip, "radius_clip", 0.0)
    eps2d = _check_number(eps2d, "eps2d", 0.0)
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree, backgrounds)
    n = means.shape[0]
    c = viewmats.shape[0]
    channels = {"RGB": 3, "D": 1, "ED": 1}.get(render_mode, 4)
    if sh_degree is None and render_mode not in ("D", "ED"):
        channels = colors.shape[-1] + (render_mode != "RGB")
    # Before any allocation, then again once the intersections are counted.
    check_splat_memory(c, n, height, width, channels, means.dtype, means.device)

    radii, means2d, depths, conics, compensations = project_gaussians(
        means, quats, scales, viewmats, Ks, width, height, eps2d=eps2d, near_plane=near_plane,
        far_plane=far_plane, radius_clip=radius_clip,
        calc_compensations=rasterize_mode == "antialiased", camera_model=camera_model,
    )  # fmt: skip
    opac = opacities[None].expand(c, n)
    if compensations is not None:
        opac = opac * compensations

    cols, bgs = camera_colors(means, colors, viewmats, radii, depths, sh_degree, backgrounds,
                              render_mode)

    tile_width = math.ceil(width / tile_size)
    tile_height = math.ceil(height / tile_size)
    tiles_per_gauss, isect_ids, flatten_ids = isect_tiles(
        means2d, radii, depths, tile_size, tile_width, tile_height, backend=backend
    )
    check_splat_memory(c, n, height, width, channels, means.dtype, means.device,
                       n_isects=flatten_ids.shape[0])
    isect_offsets = isect_offset_encode(isect_ids, c, tile_width, tile_height)
    render_colors, render_alphas = rasterize_to_pixels(
        means2d, conics, cols, opac, width, height, tile_size, isect_offsets, flatten_ids,
        backgrounds=bgs, backend=backend,
    )  # fmt: skip
    if render_mode in ("ED", "RGB+ED"):
        expected = render_colors[..., -1:] / render_alphas.clamp_min(1e-10)
        render_colors = torch.cat((render_colors[..., :-1], expected), dim=-1)

    meta: dict[str, Any] = {
        "camera_ids": None,
        "gaussian_ids": None,
        "radii": radii,
        "means2d": means2d,
        "depths": depths,
        "conics": conics,
        "opacities": opac,
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
    }
    return render_colors, render_alphas, meta

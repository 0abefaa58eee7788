"""The pure-torch twin of the Pulsar-style sphere renderer, and the per-(pixel, sphere) maths
that the Numba path shares with it.

Model (Lassner & Zollhoefer 2021, "Pulsar"; our own formulation). A camera casts one ray per
pixel. A sphere (centre ``c``, radius ``r``, opacity ``o``) at distance ``t`` from the eye
*hits* a pixel when the point on the ray at distance ``t`` lies within ``r`` of ``c`` (the
"closeness distance" ``cw``), or when the ray is the sphere's centre pixel and the sphere
projects to less than one pixel (so tiny spheres never vanish). Its weight at that pixel is

    w = closeness * o * exp(o * (1 - d) / gamma),   closeness = clamp(1 - cw / r, 0, 1)

(closeness is 1 for the centre pixel of a sub-pixel sphere), where ``d`` is the depth of the
ray's first intersection with the sphere normalised to [0, 1] between ``min_depth`` and
``max_depth``. The background has colour ``bg_col`` and weight ``exp(bg_depth / gamma)``; the
pixel is the weighted mean of the hit spheres' colours and the background. Small gamma makes
the nearest sphere dominate (opaque look), gamma near 1 blends (and gives gradients to
spheres behind). Only spheres whose closest possible intersection (``t - r``; ``z - r``
orthographically) lies in [min_depth, max_depth] are drawn.

Everything is written for one image and flat lists of (pixel, sphere) pairs, so the twin
(all pairs) and the Numba path (only the pairs its binning lists) evaluate the same terms.
"""

from __future__ import annotations

import torch

FEPS = 1e-6  # Pulsar's float epsilon: the floor of the weight sum, the centre-pixel slack


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt that is 0 (with a zero gradient, not inf) where ``x <= 0``."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), 0.0 * x)


def _safe_norm(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last axis; a zero vector gets a zero gradient, not NaN."""
    return _safe_sqrt((v * v).sum(-1))


def camera_frame(
    pixel_vec_x: torch.Tensor, pixel_vec_y: torch.Tensor, right_handed: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit sensor axes and the pixel size of a Pulsar camera.

    Args:
        pixel_vec_x, pixel_vec_y: (3,) world step from one pixel centre to the next along
            the image x and y axes.
        right_handed: Pulsar's ``right_handed_system`` (the viewing axis flips).

    Returns:
        ex, ey, ez: (3,) unit vectors (image x, image y, viewing direction); pixel_size: ()
        the length of ``pixel_vec_x`` (Pulsar uses it for both axes). Differentiable.
    """
    pix = _safe_norm(pixel_vec_x)
    ex = pixel_vec_x / pix
    ey = pixel_vec_y / _safe_norm(pixel_vec_y)
    # Pulsar's default world is left-handed: the view axis is ey x ex.
    ez = torch.linalg.cross(ex, ey) if right_handed else torch.linalg.cross(ey, ex)
    return ex, ey, ez / _safe_norm(ez), pix


def closest_possible_depth(
    vert_pos: torch.Tensor,
    vert_rad: torch.Tensor,
    cam_pos: torch.Tensor,
    ez: torch.Tensor,
    orthogonal: bool,
) -> torch.Tensor:
    """(N,) the nearest depth any ray can meet each sphere at: ``|c - eye| - r`` in
    perspective, ``(c - eye) . ez - r`` orthographically. Spheres are drawn in ascending
    order of it and only where it lies in [min_depth, max_depth]. Not differentiated (used
    for selection only)."""
    rel = (vert_pos - cam_pos).detach()
    centre = rel @ ez.detach() if orthogonal else rel.norm(dim=-1)
    return centre - vert_rad.detach()


def pair_terms(
    vert_pos: torch.Tensor,
    vert_rad: torch.Tensor,
    opacity: torch.Tensor,
    cam_pos: torch.Tensor,
    pixel_0_0_center: torch.Tensor,
    pixel_vec_x: torch.Tensor,
    pixel_vec_y: torch.Tensor,
    focal_length: torch.Tensor,
    principal_point_offsets: tuple[int, int],
    width: int,
    height: int,
    gamma: float,
    min_depth: float,
    max_depth: float,
    orthogonal: bool,
    right_handed: bool,
    pix: torch.Tensor,
    sph: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The blending terms of M (pixel, sphere) pairs of one image.

    Args:
        vert_pos: (N, 3) sphere centres; vert_rad: (N,) radii >= 0; opacity: (N,) in [0, 1].
        cam_pos, pixel_0_0_center, pixel_vec_x, pixel_vec_y: (3,) the Pulsar camera (eye,
            centre of the top-left pixel, steps along image x and y), world units.
        focal_length: () world focal length (perspective; unused orthographically).
        principal_point_offsets: integer pixel shift (x, y) of the image window.
        width, height: image size; gamma: in [1e-5, 1]; min_depth < max_depth.
        orthogonal, right_handed: Pulsar's projection and handedness switches.
        pix: (M,) int64 pixel index ``y * width + x``; sph: (M,) int64 sphere index.

    Returns:
        hit: (M,) bool, whether the sphere is drawn at the pixel (depth range included).
        a: (M,) ``closeness * opacity`` (0 where not hit); e: (M,) the exponent
        ``opacity * (1 - d) / gamma``; depth: (M,) the first intersection depth along the
        ray (detached). ``a`` and ``e`` are differentiable in positions, radii, opacities
        and the four camera vectors.
    """
    dtype = vert_pos.dtype
    ex, ey, ez, psize = camera_frame(pixel_vec_x, pixel_vec_y, right_handed)
    ppx, ppy = principal_point_offsets
    px = (pix % width).to(dtype) + ppx
    py = torch.div(pix, width, rounding_mode="floor").to(dtype) + ppy
    c = (vert_pos - cam_pos)[sph]  # (M, 3) centre relative to the eye
    r = vert_rad[sph]
    o = opacity[sph]
    r_safe = r.clamp_min(1e-30)
    if orthogonal:
        cx, cy, cz = c @ ex, c @ ey, c @ ez
        # Pulsar's orthographic rays: offset (x - W/2) pixels (not x - (W-1)/2) off axis.
        dx = cx - (px - width * 0.5) * psize
        dy = cy - (py - height * 0.5) * psize
        cw = _safe_norm(torch.stack([dx, dy], -1))
        fx = (cx / psize + (width - 1) * 0.5 - px).detach()
        fy = (cy / psize + (height - 1) * 0.5 - py).detach()
        centre_pix = (fx.abs() < 0.5 + FEPS) & (fy.abs() < 0.5 + FEPS)
        proj_r = (r / psize).detach()
        along = cz.abs()
        off_axis = cw
        centre_depth = cz
    else:
        ray = (
            pixel_0_0_center - cam_pos + px[:, None] * pixel_vec_x + py[:, None] * pixel_vec_y
        )
        d = ray / _safe_norm(ray)[:, None]
        t = _safe_norm(c)
        cw = _safe_norm(c - d * t[:, None])
        centre_pix = (0.75 * psize * t / focal_length > cw).detach()
        proj_r = (r * focal_length / t / psize).detach()
        o_p1 = (c * d).sum(-1)
        # sqrt(t^2 - o_p1^2) as a product: no cancellation near the centre ray.
        off_axis = _safe_sqrt((t + o_p1) * (t - o_p1).clamp_min(0.0))
        along = torch.minimum(o_p1, t)
        centre_depth = t
    closeness = (1.0 - cw / r_safe).clamp(0.0, 1.0)
    closeness = torch.where(centre_pix & (proj_r < 1.0), torch.ones_like(closeness), closeness)
    p1_p2 = _safe_sqrt((r + off_axis) * (r - off_axis).clamp_min(0.0))
    depth = along - p1_p2
    nd = (depth - min_depth) / (max_depth - min_depth)
    e = o * (1.0 - nd) / gamma
    cpi = (centre_depth - r).detach()
    hit = ((cw <= r).detach() | centre_pix) & (cpi >= min_depth) & (cpi <= max_depth)
    a = torch.where(hit, closeness * o, torch.zeros_like(closeness))
    e = torch.where(hit, e, torch.zeros_like(e))
    return hit, a, e, depth.detach()


def truncate_hits(hit: torch.Tensor, seg: torch.Tensor, max_n_hits: int) -> torch.Tensor:
    """Keep each pixel's first ``max_n_hits`` hits.

    Args:
        hit: (M,) bool, pairs grouped by pixel, each pixel's pairs in drawing order.
        seg: (M,) int64 index of the first pair of the pair's pixel group.
        max_n_hits: the per-pixel limit.

    Returns:
        (M,) bool, ``hit`` with the hits past the limit cleared. Not differentiable.
    """
    cs = torch.cumsum(hit.to(torch.int64), 0)
    before = torch.where(seg > 0, cs[(seg - 1).clamp_min(0)], torch.zeros_like(seg))
    return hit & (cs - before <= max_n_hits)


def composite_reference(
    a: torch.Tensor,
    e: torch.Tensor,
    hit: torch.Tensor,
    colors: torch.Tensor,
    bg_col: torch.Tensor,
    bg_exponent: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Blend dense per-pixel lists: the torch twin of the Numba compositing kernels.

    Args:
        a, e: (P, L) weights' factors and exponents (see :func:`pair_terms`); hit: (P, L)
            bool; colors: (P, L, K) the listed spheres' features; bg_col: (K,);
        bg_exponent: the background's exponent ``bg_depth / gamma``.

    Returns:
        image: (P, K) ``(exp(bg) * bg_col + sum a exp(e) col) / max(exp(bg) + sum a exp(e),
        eps)`` computed relative to the max exponent ``m``; m: (P,); den: (P,) the weight
        sum relative to ``m``. ``image`` is differentiable in a, e, colors and bg_col.
    """
    bg = e.new_full((*e.shape[:-1], 1), bg_exponent)
    m = torch.cat([torch.where(hit, e, torch.full_like(e, -torch.inf)), bg], -1)
    m = m.amax(-1).detach()
    w = torch.where(hit, a * torch.exp(torch.where(hit, e, m[:, None]) - m[:, None]), 0.0 * a)
    w_bg = torch.exp(bg_exponent - m)
    den = w_bg + w.sum(-1)
    num = w_bg[:, None] * bg_col + (w[..., None] * colors).sum(-2)
    image = num / den.clamp_min(FEPS)[:, None]
    return image, m, den.detach()

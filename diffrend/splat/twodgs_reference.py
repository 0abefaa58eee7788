"""The pure-torch twin of the 2D Gaussian (surfel) compositor
(:func:`.twodgs.rasterize_to_pixels_2dgs`).

Differentiable by autograd in every floating input. The structure is that of
:mod:`.composite_reference` (chunks of tiles, every (pixel, entry) pair at once, the per-pixel
rules as masks on a cumulative product); what differs is the Gaussian value: each pixel's ray
is intersected with the surfel's plane through the surfel's ray transform, and the 3D
Gaussian there is bounded below by a fixed screen-space low-pass filter (Huang et al. 2024,
as gsplat does it).

Per entry, with the ray transform's rows a, b, w (homogeneous pixel = T (u, v, 1)) and the
pixel centre (px, py): the ray meets the plane at (u, v, 1) ~ zeta = h_u x h_v with
h_u = px w - a and h_v = py w - b (zeta = adj(T) (px, py, 1)); the hit's camera depth is
det(T) / zeta_z, so the 3D term counts only where det(T) zeta_z > 0 (in front of the camera;
zeta_z = 0 is a ray parallel to the plane), and only where |det T| exceeds DET_REL times the
product of T's column norms (not edge-on, not degenerate). Then

    s3 = u^2 + v^2 (u = zeta_x / zeta_z, v = zeta_y / zeta_z), or +inf where it does not count,
    s2 = FILTER_INV_SQUARE |pixel - means2d|^2,
    sigma = 0.5 min(s3, s2),  alpha = min(0.999, opacity exp(-sigma)),

and alpha is blended front to back exactly as in :mod:`.composite_reference` (skip below
1/255, stop before T drops to 1e-4).
"""

from __future__ import annotations

import torch

from .composite_reference import ALPHA_MAX, ALPHA_MIN, T_MIN, _chunks, tile_ranges

# The screen-space low-pass filter: exp(-0.5 * 2 |d|^2), a Gaussian of 1/sqrt(2) pixel.
FILTER_INV_SQUARE = 2.0
# Surfels seen closer than this (|det T| relative to its columns' norms) to edge-on are drawn
# by the filter alone: the ray-plane intersection is ill-conditioned there (rounding alone
# gives |det| ~ 1e-16 for a plane through the camera, with gradients of 1e15).
DET_REL = 1e-6
# The pixel weight below which T is treated as crossed for the median: the median depth is
# that of the last contributing entry entered with T > 0.5.
MEDIAN_T = 0.5


def _surfel_sigma(
    pix: torch.Tensor, mean: torch.Tensor, rt: torch.Tensor
) -> torch.Tensor:
    """sigma (B, P, L) of entries (mean (B, L, 2), ray transform (B, L, 3, 3)) at pixel
    centres (B, P, 2); finite, with finite gradients, wherever the inputs are finite."""
    a, b, w = rt[:, None, :, 0], rt[:, None, :, 1], rt[:, None, :, 2]  # (B, 1, L, 3)
    px, py = pix[:, :, None, 0:1], pix[:, :, None, 1:2]  # (B, P, 1, 1)
    zeta = torch.linalg.cross(px * w - a, py * w - b, dim=-1)  # (B, P, L, 3)
    det = (w * torch.linalg.cross(a, b, dim=-1)).sum(-1)  # (B, 1, L)
    # |det T| over the product of T's column norms is about |cos| of the angle between the
    # normal and the view direction: below DET_REL the surfel is edge-on (or a line, or a
    # point) and only the filter draws it.
    cols = torch.sqrt((rt * rt).sum(-2))  # (B, L, 3)
    det_min = DET_REL * (cols[..., 0] * cols[..., 1] * cols[..., 2])[:, None, :]
    zz = zeta[..., 2]
    hit = (zz * det > 0.0) & (det.abs() > det_min)  # met in front of the camera
    zz_safe = torch.where(hit, zz, torch.ones_like(zz))
    u = zeta[..., 0] / zz_safe
    v = zeta[..., 1] / zz_safe
    s3 = u * u + v * v
    d = pix[:, :, None, :] - mean[:, None, :, :]  # (B, P, L, 2)
    s2 = FILTER_INV_SQUARE * (d * d).sum(-1)
    # (where s3 does not count, s2 is taken; ties take s3, as the kernels do)
    return 0.5 * torch.where(hit & (s3 <= s2), s3, s2)


def _composite_chunk(
    ranges: torch.Tensor,
    longest: int,
    pix: torch.Tensor,
    means2d: torch.Tensor,
    ray_transforms: torch.Tensor,
    features: torch.Tensor,
    opacities: torch.Tensor,
    depths: torch.Tensor,
    flatten_ids: torch.Tensor,
    distloss: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Features (B, P, F), final T (B, P), median depth (B, P) and distortion (B, P) or None of
    B tiles (``ranges`` (B, 2) list bounds, ``pix`` (B, P, 2) pixel centres; the tables end
    with the padding entry)."""
    slot = torch.arange(longest, device=ranges.device)
    j = ranges[:, :1] + slot  # (B, L)
    used = j < ranges[:, 1:]
    g = flatten_ids[torch.where(used, j, flatten_ids.shape[0] - 1)]

    sigma = _surfel_sigma(pix, means2d[g], ray_transforms[g])  # (B, P, L)
    covers = (sigma >= 0.0) & used[:, None, :]  # (also False for NaN)
    raw = opacities[g][:, None, :] * torch.exp(-torch.where(covers, sigma, 0.0))
    alpha = torch.clamp(raw, max=ALPHA_MAX)
    valid = covers & (alpha >= ALPHA_MIN)
    with torch.no_grad():
        t_next = torch.cumprod(1.0 - torch.where(valid, alpha, 0.0), dim=-1)
        contrib = valid & (t_next > T_MIN)
    a_c = torch.where(contrib, alpha, 0.0)
    t_after = torch.cumprod(1.0 - a_c, dim=-1)
    t_before = torch.cat([torch.ones_like(t_after[..., :1]), t_after[..., :-1]], dim=-1)
    weight = a_c * t_before  # (B, P, L)
    feats = torch.einsum("bpl,blf->bpf", weight, features[g])

    dep = depths[g][:, None, :].expand_as(weight)  # (B, P, L)
    with torch.no_grad():
        # The median entry: the last contributing one entered with T > 0.5 (T never grows,
        # so these are a prefix of the contributing entries).
        mid = contrib & (t_before > MEDIAN_T)
        last_mid = mid & (torch.cumsum(mid.to(torch.int64), -1) == mid.sum(-1, keepdim=True))
    median = torch.where(last_mid, dep, 0.0).sum(-1)

    distort = None
    if distloss:
        # 2 sum_i w_i (d_i (1 - T_i) - sum_{j<i} w_j d_j) = sum_{i,j} w_i w_j |d_i - d_j| when
        # the list is sorted by depth (the L1 distortion of gsplat / nerfacc).
        wd = weight * dep
        wd_before = torch.cumsum(wd, -1) - wd
        distort = 2.0 * (wd * (1.0 - t_before) - weight * wd_before).sum(-1)
    return feats, t_after[..., -1], median, distort


def rasterize_to_pixels_2dgs_reference(
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
    max_elements: int = 1 << 20,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Front-to-back compositing of depth-sorted surfels, in torch (the twin of the Numba
    kernels; inputs are assumed checked by :func:`.twodgs.rasterize_to_pixels_2dgs`).

    Args:
        means2d: (C, N, 2) pixel-space centres (the low-pass filter's centre).
        ray_transforms: (C, N, 3, 3) T = K [s_u R_u, s_v R_v, p] (camera space): homogeneous
            pixel = T (u, v, 1) for the surfel's local coordinates (u, v) in standard
            deviations.
        colors: (C, N, D) colours (any number of channels).
        opacities: (C, N) in [0, 1].
        normals: (C, N, 3) camera-space normals (composited like colours).
        depths: (C, N) camera depths of the surfels' centres (for the median and the
            distortion).
        image_width, image_height: W, H in pixels; tile_size: the tile edge.
        isect_offsets: (C, TH, TW) int, flatten_ids: (M,) int: the depth-sorted tile lists.
        backgrounds: (C, D) colour behind the surfels, or None (black).
        distloss: also return the distortion map.
        max_elements: how many (pixel, entry) pairs one chunk of tiles may hold (memory).

    Returns:
        render_colors (C, H, W, D), render_alphas (C, H, W, 1), render_normals (C, H, W, 3)
        (camera space, alpha-weighted), render_distort (C, H, W, 1) or None, render_median
        (C, H, W, 1) (0 where no entry was entered with T > 0.5). Differentiable in means2d,
        ray_transforms, colors, opacities, normals, depths and backgrounds.
    """
    C, N = means2d.shape[:2]
    D = colors.shape[-1]
    F = D + 3
    ts = tile_size
    TH, TW = isect_offsets.shape[1:]
    device, dtype = means2d.device, means2d.dtype
    ranges = tile_ranges(isect_offsets, flatten_ids.shape[0])
    counts = (ranges[:, 1] - ranges[:, 0]).clamp(min=0).tolist()

    iy, ix = torch.meshgrid(
        torch.arange(ts, device=device), torch.arange(ts, device=device), indexing="ij"
    )
    local = torch.stack([ix.reshape(-1), iy.reshape(-1)], dim=-1).to(dtype) + 0.5
    ty, tx = torch.meshgrid(
        torch.arange(TH, device=device), torch.arange(TW, device=device), indexing="ij"
    )
    origin = torch.stack([tx.reshape(-1), ty.reshape(-1)], dim=-1).to(dtype) * ts
    pix = (origin[:, None, :] + local[None]).repeat(C, 1, 1)

    # Padding entries point at an extra all-zero surfel (index C * N).
    flat_ids = torch.cat([flatten_ids.to(torch.int64), flatten_ids.new_tensor([C * N]).long()])
    m2 = torch.cat([means2d.reshape(C * N, 2), means2d.new_zeros(1, 2)])
    rt = torch.cat([ray_transforms.reshape(C * N, 3, 3), ray_transforms.new_zeros(1, 3, 3)])
    feat = torch.cat([colors, normals], -1).reshape(C * N, F)
    feat = torch.cat([feat, feat.new_zeros(1, F)])
    op = torch.cat([opacities.reshape(C * N), opacities.new_zeros(1)])
    dep = torch.cat([depths.reshape(C * N), depths.new_zeros(1)])
    outs: list[list[torch.Tensor]] = [[], [], [], []]
    for t0, t1, longest in _chunks(counts, ts * ts, max_elements):
        res = _composite_chunk(
            ranges[t0:t1], longest, pix[t0:t1], m2, rt, feat, op, dep, flat_ids, distloss
        )
        for k, r in enumerate(res):
            if r is not None:
                outs[k].append(r)

    def image(parts: list[torch.Tensor], channels: int) -> torch.Tensor:
        x = torch.cat(parts).reshape(C, TH, TW, ts, ts, channels)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(C, TH * ts, TW * ts, channels)
        return x[:, :image_height, :image_width]

    feats = image(outs[0], F)
    t_fin = image([t[..., None] for t in outs[1]], 1)
    median = image([m[..., None] for m in outs[2]], 1)
    distort = image([d[..., None] for d in outs[3]], 1) if distloss else None
    rgb, nrm = feats[..., :D], feats[..., D:]
    if backgrounds is not None:
        rgb = rgb + t_fin * backgrounds[:, None, None, :]
    return rgb, 1.0 - t_fin, nrm, distort, median

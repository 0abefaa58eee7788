"""Pure-torch points rasterizer: the oracle the Numba kernel is tested against, and the
fallback on any device.

Two steps, as for meshes: a selection step without gradients picks, at each pixel, the K
points nearest in depth whose disc covers the pixel centre (tiled over pixels and chunked
over points so memory stays bounded); then :func:`point_values` recomputes depth and
squared distance from the gathered points with torch ops, so autograd gives the backward.
The distance is computed in the points' dtype with PyTorch3D's operation order
(``dx = xf - px; dx * dx + dy * dy``), so the coverage test agrees bit for bit with
PyTorch3D and with the kernel. Runs in float64 too (``gradcheck``).
"""

from __future__ import annotations

import torch

from ..fragments import PointsRasterParams
from ..tiles import pixel_centers_torch, pixel_tiles, tile_pixels, write_k_best

PIXEL_TILE = 32  # pixels per side of a selection tile
POINT_CHUNK = 2048  # points evaluated at once per tile


def point_values(
    px: torch.Tensor, py: torch.Tensor, points: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth and squared NDC distance of pixel centres to points.

    Args:
        px, py: (...) pixel-centre NDC coordinates.
        points: (..., 3) points (x, y NDC; z view depth), broadcastable with px.

    Returns:
        zbuf (...) = z, and dists (...) = (px - x)**2 + (py - y)**2, both differentiable
        w.r.t. ``points``.
    """
    dx = px - points[..., 0]
    dy = py - points[..., 1]
    return points[..., 2], dx * dx + dy * dy


@torch.no_grad()
def select_points(
    points: torch.Tensor,
    cloud_idx: torch.Tensor,
    n_clouds: int,
    radius: torch.Tensor,
    params: PointsRasterParams,
) -> torch.Tensor:
    """The discrete step: the K listed points at each pixel, (N, H, W, K) int64, -1 = none.

    A point is listed at a pixel when its z >= 0 and its squared distance to the pixel
    centre is < radius**2. Order: ascending z, then ascending packed index.
    """
    H, W = params.image_size
    K = params.points_per_pixel
    dev, dtype = points.device, points.dtype
    ys, xs = pixel_centers_torch(H, W, dtype, dev)
    out = torch.full((n_clouds, H, W, K), -1, dtype=torch.int64, device=dev)
    r2 = radius * radius
    ok = (points[:, 2] >= 0) & (r2 > 0) & (cloud_idx >= 0)
    lo = points[:, :2] - radius[:, None]
    hi = points[:, :2] + radius[:, None]
    for n in range(n_clouds):
        pts_n = torch.nonzero(ok & (cloud_idx == n)).flatten()
        if pts_n.numel() == 0:
            continue
        for r0, c0, ty, tx in pixel_tiles(ys, xs, PIXEL_TILE):
            # Conservative box test (the exact test below decides).
            slack = 1e-6 * (1 + tx.abs().max() + ty.abs().max())
            hit = (
                (lo[pts_n, 0] <= tx.max() + slack)
                & (hi[pts_n, 0] >= tx.min() - slack)
                & (lo[pts_n, 1] <= ty.max() + slack)
                & (hi[pts_n, 1] >= ty.min() - slack)
            )
            cand = pts_n[hit]  # ascending packed index
            if cand.numel() == 0:
                continue
            px, py = tile_pixels(ty, tx)
            best_z = torch.zeros((px.shape[0], 0), dtype=dtype, device=dev)
            best_p = torch.zeros((px.shape[0], 0), dtype=torch.int64, device=dev)
            for s in range(0, cand.numel(), POINT_CHUNK):
                pc = cand[s : s + POINT_CHUNK]
                z, d2 = point_values(px, py, points[pc][None])
                valid = d2 < r2[pc][None]
                z = torch.where(valid, z, torch.full_like(z, float("inf")))
                p = torch.where(valid, pc.expand_as(valid), torch.full_like(pc, -1))
                # best holds lower indices than this chunk, both sorted by (z, index)
                # among equal z: a stable sort by z keeps (z, index) order.
                z_all = torch.cat((best_z, z), dim=1)
                p_all = torch.cat((best_p, p), dim=1)
                order = torch.argsort(z_all, dim=1, stable=True)[:, :K]
                best_z, best_p = z_all.gather(1, order), p_all.gather(1, order)
            write_k_best(out, n, r0, c0, ty, tx, best_z, best_p)
    return out


def rasterize_reference(
    points: torch.Tensor,
    cloud_idx: torch.Tensor,
    n_clouds: int,
    radius: torch.Tensor,
    params: PointsRasterParams,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rasterize screen-space points with torch ops only.

    Args:
        points: (P, 3) points, x and y in NDC, z the view depth. Any float dtype/device.
        cloud_idx: (P,) int64 cloud (image) index of each point; -1 = skip the point.
        n_clouds: N, the number of images.
        radius: (P,) radius of each point in NDC units (same dtype and device), >= 0.
        params: image size and K (:class:`..fragments.PointsRasterParams`).

    Returns:
        idx (N, H, W, K) int64, zbuf (N, H, W, K), dists (N, H, W, K); -1 where empty.
        zbuf and dists are differentiable w.r.t. ``points`` (autograd); nothing is
        differentiable w.r.t. ``radius``.
    """
    idx = select_points(points, cloud_idx, n_clouds, radius, params)
    H, W = params.image_size
    ys, xs = pixel_centers_torch(H, W, points.dtype, points.device)
    mask = idx >= 0
    where = torch.nonzero(mask, as_tuple=True)
    z, d2 = point_values(xs[where[2]], ys[where[1]], points[idx[mask]])
    zbuf = torch.full(idx.shape, -1.0, dtype=points.dtype, device=points.device)
    dists = torch.full_like(zbuf, -1.0)
    return idx, zbuf.index_put(where, z), dists.index_put(where, d2)

"""Triton backend of the points rasterizer: binning, kernel launches.

Same contract as :mod:`.numba` (and :mod:`.reference`). Points are binned into
T x T pixel tiles on the device (a small Triton kernel per point, the shared tile-entries
kernel, a stable sort), counting before filling, so no per-tile budget exists to overflow;
the only host synchronisation per forward call reads the number of (tile, point) entries
(and the number of non-finite points) to size the list. Results do not depend on the tile
size. The kernels (:mod:`.triton_kernels`) compute in the dtype of the points (float32 or
float64; other float dtypes are computed in float32). Devices: as :mod:`..triton_shared`.
"""

from __future__ import annotations

import torch
import triton

from .. import triton_shared as ts
from ..fragments import PointsRasterParams, empty_fragment_buffers
from ..tiles import pixel_centers_torch, tile_grid
from . import triton_kernels as pk


def bin_points(
    points: torch.Tensor,
    radius: torch.Tensor,
    cloud_idx: torch.Tensor,
    n_clouds: int,
    image_size: tuple[int, int],
    tile: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """List, for each (cloud, tile), the points whose disc's pixel range touches it.

    Args:
        points: (P, 3) screen-space points, float32 or float64, contiguous.
        radius: (P,) radius of each point, same dtype.
        cloud_idx: (P,) int64 (-1 = skip).
        n_clouds: N. image_size: (H, W). tile: tile side in pixels.

    Returns:
        tile_start: (N * TY * TX + 1,) int64 offsets into ``tile_points``.
        tile_points: (total,) int32 packed point indices, ascending within each tile.
        tile_rec: (total, 4) each entry's x, y, z and r*r (r*r in the points' dtype, as
            the reference computes it), so that the kernel reads a tile's points in
            memory order.

    Raises:
        ValueError: if a point or radius is NaN or inf, a radius is negative or a cloud
            index lies outside [-1, n_clouds) (counted on the device, read in the one sync).
    """
    H, W = image_size
    dev = points.device
    P = points.shape[0]
    n_ty, n_tx = tile_grid(H, W, tile)
    n_tiles = n_clouds * n_ty * n_tx
    if P >= 2**31 - 1:
        raise ValueError(f"too many points for the Triton kernels ({P})")
    per_point = torch.empty((5, max(P, 1)), dtype=torch.int32, device=dev)
    count, bad, r0, c0, ntx = per_point
    if P:
        pk.point_setup_kernel[(triton.cdiv(P, ts.SETUP_BLOCK),)](
            points, radius, cloud_idx, count, bad, r0, c0, ntx,
            P, n_clouds, H, W, *ts.pixel_range_args(H, W), TILE=tile, BLOCK=ts.SETUP_BLOCK,
            enable_fp_fusion=False,
        )
    count, bad = count[:P], bad[:P]
    tile_start, tile_points = ts.fill_tiles(
        cloud_idx, count, bad, r0, c0, ntx, n_ty, n_tx, n_tiles, tile, "point",
        "points_ndc, radius or cloud_idx has bad values at {} points (NaN or inf, a "
        "negative radius, or a cloud index outside [-1, n_clouds))")
    rec = torch.cat((points, (radius * radius)[:, None]), dim=1)
    return tile_start, tile_points, rec[tile_points.long()]


def rasterize_forward(
    points: torch.Tensor,
    cloud_idx: torch.Tensor,
    n_clouds: int,
    radius: torch.Tensor,
    params: PointsRasterParams,
    tile: int | None = None,
    num_warps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Triton forward. Same contract as :func:`.reference.rasterize_reference` (no autograd).

    Args:
        points: (P, 3) float CUDA tensor (CPU under ``TRITON_INTERPRET=1``), screen space.
        cloud_idx: (P,) int64 cloud index of each point (-1 = not rasterized).
        radius: (P,) radius of each point.
        tile: tile side in pixels, a power of two (results do not depend on it).
        num_warps: warps per forward program (default :func:`..triton_shared.num_warps_for`).

    Returns:
        idx (N, H, W, K) int64, zbuf (N, H, W, K), dists (N, H, W, K) in the dtype of
        ``points``; -1 where empty.

    Raises:
        ValueError: on bad points, radii or cloud indices (see :func:`bin_points`), or if
            ``tile`` is not a power of two.
    """
    H, W = params.image_size
    K = params.points_per_pixel
    dev = points.device
    dtype = points.dtype
    cdt = ts.compute_dtype(dtype)
    tile = ts.check_tile(tile)
    pts = points.detach().to(cdt).contiguous()
    rad = radius.detach().to(device=dev, dtype=cdt).contiguous()
    cloud_idx = cloud_idx.to(device=dev, dtype=torch.int64).contiguous()
    tile_start, tile_points, tile_rec = bin_points(pts, rad, cloud_idx, n_clouds, (H, W),
                                                   tile)
    idx, zbuf, dists = empty_fragment_buffers(n_clouds, H, W, K, cdt, dev)
    if idx.numel():
        ys, xs = pixel_centers_torch(H, W, cdt, dev)
        n_ty, n_tx = tile_grid(H, W, tile)
        if tile_points.numel() == 0:  # valid pointers, never read
            tile_points = torch.zeros(1, dtype=torch.int32, device=dev)
            tile_rec = torch.zeros((1, 4), dtype=cdt, device=dev)
        if pts.numel() == 0:
            pts = torch.zeros((1, 3), dtype=cdt, device=dev)
        slots = min(K, ts.SLOTS)
        pk.points_forward_kernel[(n_clouds * n_ty * n_tx,)](
            pts, tile_start, tile_points, tile_rec, ys, xs, idx, zbuf, dists,
            H, W, n_ty, n_tx, K, -(-K // slots),
            T=tile, S=slots, num_warps=num_warps or ts.num_warps_for(tile),
            # no fused multiply-adds: dx*dx + dy*dy rounds like the reference's torch ops
            enable_fp_fusion=False,
        )
    return idx, zbuf.to(dtype), dists.to(dtype)


def rasterize_backward(
    points: torch.Tensor,
    idx: torch.Tensor,
    grad_zbuf: torch.Tensor,
    grad_dists: torch.Tensor,
    params: PointsRasterParams,
) -> torch.Tensor:
    """Triton backward: gradient (P, 3) of the points from the zbuf and dists gradients
    (``params``, the forward's, for the kernels' common signature: nothing here needs it).

    d zbuf / d z = 1; d dists / d x = 2 (x - px), likewise y. Accumulates with atomic adds
    (summation order not deterministic in float), unless
    ``torch.are_deterministic_algorithms_enabled()``: then per-slot terms are written and
    summed by ``index_add_`` (deterministic, more memory: (N*H*W*K, 3)).
    """
    del params
    N, H, W, K = idx.shape
    P = points.shape[0]
    M = idx.numel()
    if M == 0 or P == 0:
        return torch.zeros_like(points)
    cdt, pts, idx, ys, xs, (gz, gd) = ts.backward_inputs(points, idx, (grad_zbuf, grad_dists))
    out, atomic = ts.gradient_buffer(P, M, 3, cdt, pts.device)
    pk.points_backward_kernel[(triton.cdiv(M, ts.BACKWARD_BLOCK),)](
        pts, idx, gz, gd, ys, xs, out, M, H, W, K, BLOCK=ts.BACKWARD_BLOCK, ATOMIC=atomic,
        enable_fp_fusion=ts.FUSE,
    )
    return ts.sum_gradient(out, atomic, idx, P).to(points.dtype)

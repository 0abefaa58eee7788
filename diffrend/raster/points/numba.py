"""Numba CPU kernels of the points rasterizer: forward (pick K points per pixel) and backward.

Same structure as the mesh kernels (:mod:`..mesh.numba`): each point's disc (its box grown
by the radius) gives the pixel rows and columns it may cover; points are binned into tiles
by :mod:`..numba_shared`'s count pass and :func:`bin_points`' fill (nothing is ever dropped,
and each tile lists its points in ascending packed index whatever the tiling or thread
count); one parallel task per (cloud, tile) keeps, per pixel, a sorted list of the K points
nearest in depth (ties: the lower index). The coverage test ``dx * dx + dy * dy < r * r`` is
computed in the points' dtype in PyTorch3D's operation order, so float32 inputs agree with
PyTorch3D bit for bit. Backward: a fixed number of row bands (set by the problem size, not
the thread count) each add their (pixel, k) contributions into their own float64 buffer; the
buffers are summed in order, so gradients are deterministic. Both compile once and are
cached on disk.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from ...threads import kernel_lock
from ..fragments import PointsRasterParams, empty_fragment_buffers
from ..numba_shared import (
    count_entries,
    index_range,
    n_row_bands,
    pixel_steps,
    set_empty,
    sum_row_bands,
    tile_bounds,
    tile_shift,
    tile_span,
    to_numpy,
)
from ..tiles import pixel_centers_ndc, tile_grid

TILE = 16


@nb.njit(parallel=True, cache=True)
def point_pixel_ranges(pts, radius, cloud, ys, xs):
    """Per-point pixel range, or an empty one for points that are never listed.

    Args:
        pts: (P, 3) screen-space points (x, y NDC; z view depth).
        radius: (P,) radius of each point (NDC units).
        cloud: (P,) cloud index of each point (-1 = skip).
        ys, xs: (H,), (W,) pixel-centre NDC coordinates.

    Returns:
        rng: (P, 4) int32 [row0, row1, col0, col1] inclusive (conservative by 1e-3 pixel;
            the kernel repeats the exact test); row0 > row1 if the point is behind the
            camera (z < 0), has radius 0, belongs to no cloud or lies off the image.
        n_bad: how many points have a NaN or inf coordinate or radius.
    """
    P = pts.shape[0]
    H = ys.shape[0]
    W = xs.shape[0]
    rng = np.empty((P, 4), np.int32)
    ystep, xstep = pixel_steps(ys, xs)
    n_bad = 0
    for p in nb.prange(P):
        set_empty(rng, p)
        x = np.float64(pts[p, 0])
        y = np.float64(pts[p, 1])
        z = np.float64(pts[p, 2])
        r = np.float64(radius[p])
        if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(z) and np.isfinite(r)):
            n_bad += 1
            continue
        if cloud[p] < 0 or z < 0.0 or not (r > 0.0):
            continue
        r0, r1 = index_range(y - r, y + r, np.float64(ys[0]), ystep, H)
        c0, c1 = index_range(x - r, x + r, np.float64(xs[0]), xstep, W)
        if r0 <= r1 and c0 <= c1:
            rng[p, 0] = r0
            rng[p, 1] = r1
            rng[p, 2] = c0
            rng[p, 3] = c1
    return rng, n_bad


@nb.njit(parallel=True, cache=True)
def _fill_points(pts, radius, rng, cloud, tile, n_ty, n_tx, cursor, out, rec, rec_r):
    """Second binning pass: write each point (x, y, z, r*r) into every tile it touches."""
    P = rng.shape[0]
    n_chunks = cursor.shape[0]
    shift = tile_shift(tile)
    for ch in nb.prange(n_chunks):
        for p in range(ch * P // n_chunks, (ch + 1) * P // n_chunks):
            if rng[p, 0] > rng[p, 1]:
                continue
            base = cloud[p] * n_ty * n_tx
            r2 = radius[p] * radius[p]  # in the points' dtype, as PyTorch3D
            ty0, ty1, tx0, tx1 = tile_span(rng, p, tile, shift)
            for ty in range(ty0, ty1 + 1):
                for tx in range(tx0, tx1 + 1):
                    t = base + ty * n_tx + tx
                    j = cursor[ch, t]
                    out[j] = p
                    rec[j, 0] = pts[p, 0]
                    rec[j, 1] = pts[p, 1]
                    rec[j, 2] = pts[p, 2]
                    rec[j, 3] = r2
                    for k in range(4):
                        rec_r[j, k] = rng[p, k]
                    cursor[ch, t] += 1


def bin_points(pts, radius, rng, cloud, n_clouds, height, width, tile):
    """List, for each (cloud, tile), the points whose pixel range touches it.

    Returns:
        tile_start: (N * TY * TX + 1,) int64 offsets into the entries.
        tile_points: (total,) int64 packed index of each entry, ascending within each tile.
        rec: (total, 4) the entry's x, y, z, r*r (points' dtype). rec_r: (total, 4) its
            pixel range.
    """
    n_ty, n_tx = tile_grid(height, width, tile)
    with kernel_lock():  # (see diffrend.threads)
        start, cursor = count_entries(rng, cloud, n_clouds, height, width, tile)
        total = int(start[-1])
        out = np.empty(total, np.int64)
        rec = np.empty((total, 4), pts.dtype)
        rec_r = np.empty((total, 4), np.int32)
        _fill_points(pts, radius, rng, cloud, tile, n_ty, n_tx, cursor, out, rec, rec_r)
    return start, out, rec, rec_r


@nb.njit(parallel=True, cache=True)
def _forward_tiles(tile_start, tile_points, rec, rec_r, ys, xs, n_clouds, K, tile,
                   idx, zbuf, dists):
    H = ys.shape[0]
    W = xs.shape[0]
    n_ty = -(-H // tile)
    n_tx = -(-W // tile)
    for tid in nb.prange(n_clouds * n_ty * n_tx):
        n, r_lo, c_lo, r_hi, c_hi = tile_bounds(tid, n_ty, n_tx, tile, H, W)
        tw = c_hi - c_lo + 1
        npix = (r_hi - r_lo + 1) * tw
        cnt = np.zeros(npix, np.int64)
        kz = np.empty(npix * K, np.float64)  # exact copies of the points' dtype values
        kp = np.empty(npix * K, np.int64)
        kd = np.empty(npix * K, np.float64)
        for j in range(tile_start[tid], tile_start[tid + 1]):
            p = tile_points[j]
            x = rec[j, 0]
            y = rec[j, 1]
            z = np.float64(rec[j, 2])
            r2 = rec[j, 3]
            for r in range(max(rec_r[j, 0], r_lo), min(rec_r[j, 1], r_hi) + 1):
                dy = ys[r] - y
                for c in range(max(rec_r[j, 2], c_lo), min(rec_r[j, 3], c_hi) + 1):
                    dx = xs[c] - x
                    d2 = dx * dx + dy * dy
                    if not (d2 < r2):
                        continue
                    q = (r - r_lo) * tw + (c - c_lo)
                    base = q * K
                    m = cnt[q]
                    if m == K and not (z < kz[base + K - 1]):
                        continue  # ties go to the lower index, which is already there
                    pos = m if m < K else K - 1
                    while pos > 0 and kz[base + pos - 1] > z:
                        if pos < K:
                            kz[base + pos] = kz[base + pos - 1]
                            kp[base + pos] = kp[base + pos - 1]
                            kd[base + pos] = kd[base + pos - 1]
                        pos -= 1
                    kz[base + pos] = z
                    kp[base + pos] = p
                    kd[base + pos] = d2
                    cnt[q] = min(m + 1, K)
        for q in range(npix):
            r = r_lo + q // tw
            c = c_lo + q % tw
            base = q * K
            for k in range(cnt[q]):
                idx[n, r, c, k] = kp[base + k]
                zbuf[n, r, c, k] = kz[base + k]
                dists[n, r, c, k] = kd[base + k]
            for k in range(cnt[q], K):  # outputs come uninitialised: one pass, not two
                idx[n, r, c, k] = -1
                zbuf[n, r, c, k] = -1.0
                dists[n, r, c, k] = -1.0


@nb.njit(parallel=True, cache=True)
def _backward_chunks(pts, idx, gz, gd, ys, xs, n_chunks):
    """Per-chunk point gradients (n_chunks, P, 3): chunk ch owns a fixed band of image rows
    and adds its (pixel, k) contributions in row order, so the sum over chunks (taken in
    order afterwards) does not depend on the thread count."""
    N, H, W, K = idx.shape
    grads = np.zeros((n_chunks, pts.shape[0], 3), np.float64)
    rows = N * H
    for ch in nb.prange(n_chunks):
        for row in range(ch * rows // n_chunks, (ch + 1) * rows // n_chunks):
            n = row // H
            r = row % H
            py = np.float64(ys[r])
            for c in range(W):
                px = np.float64(xs[c])
                for k in range(K):
                    p = idx[n, r, c, k]
                    if p < 0:
                        break  # the list is -1 from here on
                    g = 2.0 * np.float64(gd[n, r, c, k])
                    grads[ch, p, 0] += g * (np.float64(pts[p, 0]) - px)
                    grads[ch, p, 1] += g * (np.float64(pts[p, 1]) - py)
                    grads[ch, p, 2] += np.float64(gz[n, r, c, k])
    return grads


def _centers(height: int, width: int, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in the points' dtype (float32 values, exactly converted)."""
    ys, xs = pixel_centers_ndc(height, width)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    return ys.astype(np_dtype), xs.astype(np_dtype)


def rasterize_forward(
    points: torch.Tensor,
    cloud_idx: torch.Tensor,
    n_clouds: int,
    radius: torch.Tensor,
    params: PointsRasterParams,
    tile: int = TILE,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Numba forward. Same contract as :func:`.reference.rasterize_reference` (no autograd).

    Args:
        points: (P, 3) float32/float64 CPU tensor, screen space.
        cloud_idx: (P,) int64 cloud index of each point (-1 = not rasterized).
        radius: (P,) radius of each point, the dtype of ``points``.
        tile: tile side in pixels (results do not depend on it).

    Returns:
        idx (N, H, W, K) int64, zbuf (N, H, W, K), dists (N, H, W, K) in the dtype of
        ``points``; -1 where empty.

    Raises:
        ValueError: if a point or radius is NaN or inf.
    """
    H, W = params.image_size
    K = params.points_per_pixel
    pts = to_numpy(points)
    rad = to_numpy(radius.to(points.dtype))
    cloud = to_numpy(cloud_idx)
    ys, xs = _centers(H, W, points.dtype)
    with kernel_lock():  # (see diffrend.threads)
        rng, n_bad = point_pixel_ranges(pts, rad, cloud, ys, xs)
        if n_bad:
            raise ValueError(f"points (or radius) has NaN or inf values at {n_bad} points")
        start, tile_points, rec, rec_r = bin_points(pts, rad, rng, cloud, n_clouds, H, W, tile)
        # Every entry is written by exactly one (cloud, tile) task, empty slots with -1.
        idx, zbuf, dists = empty_fragment_buffers(n_clouds, H, W, K, points.dtype)
        _forward_tiles(start, tile_points, rec, rec_r, ys, xs, n_clouds, K, tile,
                       idx.numpy(), zbuf.numpy(), dists.numpy())
    return idx, zbuf, dists


def rasterize_backward(
    points: torch.Tensor,
    idx: torch.Tensor,
    grad_zbuf: torch.Tensor,
    grad_dists: torch.Tensor,
    params: PointsRasterParams,
) -> torch.Tensor:
    """Numba backward: gradient (P, 3) of the points from the zbuf and dists gradients
    (``params``, the forward's, for the kernels' common signature: nothing here needs it).

    d zbuf / d z = 1; d dists / d x = 2 (x - px), likewise y. Deterministic.
    """
    del params
    N, H, W, K = idx.shape
    ys, xs = pixel_centers_ndc(H, W)
    n_chunks = n_row_bands(N * H, points.shape[0], 3, N * H * W * K)
    with kernel_lock():
        grads = _backward_chunks(to_numpy(points), to_numpy(idx), to_numpy(grad_zbuf),
                                 to_numpy(grad_dists), ys, xs, n_chunks)
    return sum_row_bands(grads, points.dtype)

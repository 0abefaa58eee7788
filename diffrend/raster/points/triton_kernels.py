"""Triton kernels of the points rasterizer: forward (pick K points per pixel) and backward.

Computation is in the dtype of the points (float32 or float64), like
:mod:`.reference`; host code, binning and launches live in :mod:`.triton`.

Forward: one program per (cloud, tile of T x T pixels) walks the tile's entries in
ascending packed index (from :func:`.triton.bin_points`). A point is listed at a pixel
when ``dx * dx + dy * dy < r * r`` with ``dx = px - x`` (the reference's operations in the
same order; the kernel is launched without fused multiply-adds, so float32 rounds like
torch), its z >= 0 having been checked by the binning. Each pixel keeps a list of S <= 8
(depth, index) slots sorted ascending, held as S separate one-dimensional register
tensors, one value per pixel: a new point enters by a chain of compare-and-swap steps
written with ``tl.where`` (insertion sort), so everything per pixel is elementwise. There
is no reduction along the list and no two-dimensional (pixel, slot) tensor whose layout
could replicate or drop elements: the mesh kernel's replace-the-worst list, which uses
such reductions, lost faces on triton 3.6 for some (tile, num_warps) pairs, and this
design avoids those constructs on purpose (the mesh kernel now has this structure too;
the slot helpers are shared, :mod:`..triton_shared_kernels`). The only reductions are
"does any pixel of the block need this work" tests over one-dimensional masks, which give
the same answer however elements are replicated across threads; with the default launch (T >= 8 and
num_warps = T*T/32, at most 4) each thread owns at least one pixel anyway.

K > 8: the list is filled in rounds of S = 8 slots; round j keeps the 8 best points that
come after the last point of round j - 1 in (depth, index) order, so any K works (more
walks over the tile's entries, nothing dropped).

Backward: one program per block of (pixel, k) slots adds d zbuf / d z = 1 and
d dists / d (x, y) = 2 (x - px, y - py) into the point's gradient with atomics (order not
deterministic), or, in deterministic mode, writes per-slot terms that the host sums with
``index_add_``.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ..triton_shared_kernels import insert, last, tile_block, tile_range

BIG: tl.constexpr = tl.constexpr(2**31 - 1)  # index of an empty slot (sorts last)


@triton.jit
def _store_slot(k, zk, ik, px, py, pts_ptr, idx_ptr, zbuf_ptr, dists_ptr, pix, pvalid, K):
    """Write list slot k of every pixel: index, depth, squared distance recomputed from
    the point with the coverage test's operations (bit-equal to the value tested)."""
    used = ik != BIG
    p = tl.where(used, ik, 0).to(tl.int64)
    x = tl.load(pts_ptr + p * 3, mask=used, other=0.0)
    y = tl.load(pts_ptr + p * 3 + 1, mask=used, other=0.0)
    dx = px - x
    dy = py - y
    d2 = dx * dx + dy * dy
    real = pvalid & ((tl.zeros_like(ik) + k) < K)  # (a block mask: see the mesh kernel)
    out = pix * K + k
    tl.store(idx_ptr + out, tl.where(used, p, -1), mask=real)
    tl.store(zbuf_ptr + out, tl.where(used, zk, -1.0), mask=real)
    tl.store(dists_ptr + out, tl.where(used, d2, -1.0), mask=real)


@triton.jit
def points_forward_kernel(
    pts_ptr,  # (P, 3) points, compute dtype
    tile_start_ptr,  # (n_tiles + 1,) int64
    tile_points_ptr,  # (total,) int32 packed index, ascending within a tile
    tile_rec_ptr,  # (total, 4) the entry's x, y, z, r*r (read in memory order)
    ys_ptr, xs_ptr,  # (H,), (W,) pixel centres, compute dtype
    idx_ptr, zbuf_ptr, dists_ptr,  # outputs (N, H, W, K)
    H, W, n_ty, n_tx, K, n_rounds,
    T: tl.constexpr, S: tl.constexpr,
):
    pid = tl.program_id(0)
    offs, pvalid, px, py, pix = tile_block(pid, ys_ptr, xs_ptr, H, W, n_ty, n_tx, T, T * T)
    inf = tl.zeros_like(px) + float("inf")
    big = tl.zeros_like(offs) + BIG
    start = tl.load(tile_start_ptr + pid)
    end = tl.load(tile_start_ptr + pid + 1)
    # Lower bound of the round: a point is listed in this round only if it sorts after
    # (lz, li), the last point of the previous round (-inf: none yet).
    lz = -inf
    li = tl.zeros_like(offs) - 1
    for rnd in range(0, n_rounds):
        z0, i0, z1, i1, z2, i2, z3, i3 = inf, big, inf, big, inf, big, inf, big
        z4, i4, z5, i5, z6, i6, z7, i7 = inf, big, inf, big, inf, big, inf, big
        # A pixel whose previous round ended with an empty slot is complete.
        active = pvalid & (lz < float("inf"))
        if tl.max(active.to(tl.int32), axis=0) > 0:
            # The next entry is loaded one iteration ahead, so that its load latency
            # overlaps the current point's work.
            ok = start < end
            np_ = tl.load(tile_points_ptr + start, mask=ok, other=0)
            nb = tile_rec_ptr + start * 4
            nx = tl.load(nb, mask=ok, other=0.0)
            ny = tl.load(nb + 1, mask=ok, other=0.0)
            nz = tl.load(nb + 2, mask=ok, other=0.0)
            nr2 = tl.load(nb + 3, mask=ok, other=0.0)
            for e in range(start, end):
                p = np_
                x = nx
                y = ny
                z = nz
                r2 = nr2
                ok = e + 1 < end
                np_ = tl.load(tile_points_ptr + e + 1, mask=ok, other=0)
                nb = tile_rec_ptr + (e + 1) * 4
                nx = tl.load(nb, mask=ok, other=0.0)
                ny = tl.load(nb + 1, mask=ok, other=0.0)
                nz = tl.load(nb + 2, mask=ok, other=0.0)
                nr2 = tl.load(nb + 3, mask=ok, other=0.0)
                dx = px - x
                dy = py - y
                d2 = dx * dx + dy * dy
                zl, _il = last(z0, i0, z1, i1, z2, i2, z3, i3, z4, i4, z5, i5, z6, i6,
                                z7, i7, S)
                # p is larger than every index listed this round, so it must beat the
                # worst slot's depth strictly.
                take = (active & (d2 < r2) & (z < zl)
                        & ((z > lz) | ((z == lz) & (p > li))))
                if tl.max(take.to(tl.int32), axis=0) > 0:
                    cz = tl.where(take, z, inf)
                    ci = tl.where(take, p, big)
                    z0, i0, z1, i1, z2, i2, z3, i3, z4, i4, z5, i5, z6, i6, z7, i7 = insert(
                        cz, ci, z0, i0, z1, i1, z2, i2, z3, i3, z4, i4, z5, i5, z6, i6,
                        z7, i7, S)
        k0 = rnd * S
        _store_slot(k0, z0, i0, px, py, pts_ptr, idx_ptr, zbuf_ptr, dists_ptr, pix, pvalid, K)
        if S > 1:
            _store_slot(k0 + 1, z1, i1, px, py, pts_ptr, idx_ptr, zbuf_ptr, dists_ptr, pix,
                        pvalid, K)
        if S > 2:
            _store_slot(k0 + 2, z2, i2, px, py, pts_ptr, idx_ptr, zbuf_ptr, dists_ptr, pix,
                        pvalid, K)
        if S > 3:
            _store_slot(k0 + 3, z3, i3, px, py, pts_ptr, idx_ptr, zbuf_ptr, dists_ptr, pix,
                        pvalid, K)
        if S > 4:
            _store_slot(k0 + 4, z4, i4, px, py, pts_ptr, idx_ptr, zbuf_ptr, dists_ptr, pix,
                        pvalid, K)
        if S > 5:
            _store_slot(k0 + 5, z5, i5, px, py, pts_ptr, idx_ptr, zbuf_ptr, dists_ptr, pix,
                        pvalid, K)
        if S > 6:
            _store_slot(k0 + 6, z6, i6, px, py, pts_ptr, idx_ptr, zbuf_ptr, dists_ptr, pix,
                        pvalid, K)
        if S > 7:
            _store_slot(k0 + 7, z7, i7, px, py, pts_ptr, idx_ptr, zbuf_ptr, dists_ptr, pix,
                        pvalid, K)
        lz, li = last(z0, i0, z1, i1, z2, i2, z3, i3, z4, i4, z5, i5, z6, i6, z7, i7, S)


@triton.jit
def points_backward_kernel(
    pts_ptr,  # (P, 3) points, compute dtype
    idx_ptr,  # (M,) int64, M = N*H*W*K
    gz_ptr, gd_ptr,  # (M,) output gradients, compute dtype
    ys_ptr, xs_ptr,
    grad_ptr,  # (P, 3) accumulated with atomics, or (M, 3) per-slot terms if not ATOMIC
    M, H, W, K,
    BLOCK: tl.constexpr, ATOMIC: tl.constexpr,
):
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    p = tl.load(idx_ptr + i, mask=i < M, other=-1)
    m = p >= 0
    pix = i // K
    c = pix % W
    r = (pix // W) % H
    px = tl.load(xs_ptr + c, mask=m, other=0.0)
    py = tl.load(ys_ptr + r, mask=m, other=0.0)
    pb = pts_ptr + tl.where(m, p, 0) * 3
    x = tl.load(pb, mask=m, other=0.0)
    y = tl.load(pb + 1, mask=m, other=0.0)
    gz = tl.load(gz_ptr + i, mask=m, other=0.0)
    g = 2.0 * tl.load(gd_ptr + i, mask=m, other=0.0)
    gx = g * (x - px)
    gy = g * (y - py)
    if ATOMIC:
        ob = grad_ptr + tl.where(m, p, 0) * 3
        tl.atomic_add(ob, gx, mask=m, sem="relaxed")
        tl.atomic_add(ob + 1, gy, mask=m, sem="relaxed")
        tl.atomic_add(ob + 2, gz, mask=m, sem="relaxed")
    else:
        ob = grad_ptr + i * 3
        mm = i < M
        tl.store(ob, tl.where(m, gx, 0.0), mask=mm)
        tl.store(ob + 1, tl.where(m, gy, 0.0), mask=mm)
        tl.store(ob + 2, tl.where(m, gz, 0.0), mask=mm)


# ---- binning (see triton.bin_points): per-point setup; entries are written by
# triton_shared_kernels.tile_entries_kernel, which only needs each item's image and tile range.


@triton.jit
def point_setup_kernel(
    pts_ptr,  # (P, 3) points, compute dtype
    r_ptr,  # (P,) radius, compute dtype
    cloud_ptr,  # (P,) int64 cloud of each point (-1 = skip)
    count_ptr, bad_ptr, r0_ptr, c0_ptr, ntx_ptr,  # (P,) int32 outputs
    P, n_clouds, H, W, yfirst, ystep, xfirst, xstep,  # float64 scalars
    TILE: tl.constexpr, BLOCK: tl.constexpr,
):
    """Whether each point is bad input, whether it is listed anywhere (z >= 0, radius > 0,
    in a cloud), its
    pixel range (numba.point_pixel_ranges: float64, conservative by 1e-3 pixel; the
    forward repeats the exact test) and its number of tiles."""
    p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    in_ = p < P
    x = tl.load(pts_ptr + p * 3, mask=in_, other=0.0).to(tl.float64)
    y = tl.load(pts_ptr + p * 3 + 1, mask=in_, other=0.0).to(tl.float64)
    z = tl.load(pts_ptr + p * 3 + 2, mask=in_, other=0.0).to(tl.float64)
    rad = tl.load(r_ptr + p, mask=in_, other=0.0).to(tl.float64)
    cloud = tl.load(cloud_ptr + p, mask=in_, other=-1)
    # |v| < inf is false for NaN and +-inf alike. Bad input (counted, then reported by the
    # caller) includes what the other backends check on the host: a negative radius and a
    # cloud index outside [-1, n_clouds).
    bad = ~((tl.abs(x) < float("inf")) & (tl.abs(y) < float("inf"))
            & (tl.abs(z) < float("inf")) & (tl.abs(rad) < float("inf")))
    bad = bad | (rad < 0.0) | (cloud < -1) | (cloud >= n_clouds)
    ok = in_ & ~bad & (cloud >= 0) & (z >= 0.0) & (rad > 0.0)
    ok, r0, c0, ntx, count = tile_range(ok, x - rad, x + rad, y - rad, y + rad, H, W,
                                        yfirst, ystep, xfirst, xstep, TILE)
    tl.store(count_ptr + p, count, mask=in_)
    tl.store(bad_ptr + p, (in_ & bad).to(tl.int32), mask=in_)
    tl.store(r0_ptr + p, r0, mask=in_)
    tl.store(c0_ptr + p, c0, mask=in_)
    tl.store(ntx_ptr + p, ntx, mask=in_)

"""Triton kernels of the mesh rasterizer: forward (pick K faces per pixel) and backward.

The per (pixel, face) maths is :mod:`.pixel_math`'s (PyTorch3D's formulas and epsilons),
written over blocks of pixels. Computation is in the dtype of the face vertices (float32 or
float64), like :mod:`.reference`. Host code, binning and launches live in :mod:`.triton`.

Forward: one program per (image, tile of T x T pixels) walks the tile's faces in ascending
index order (from :func:`.triton.bin_faces`) and keeps, per pixel, a list of S <= 8 (depth,
face index) slots sorted ascending (ties: the lower index), each slot a one-dimensional
register tensor with one value per pixel; a face enters by a chain of compare-and-swap
steps (:mod:`..triton_shared_kernels`). K > 8 is filled in rounds: round j walks the tile's faces
again and keeps the 8 best entries strictly after the last entry of round j - 1, so any K
works and nothing is dropped. Each round writes its slots as list entries 8j .. 8j + 7, with
barycentrics and distances recomputed for the listed faces only.

Why slots and rounds: this kernel's first list was a two-dimensional (pixels, K) register
tensor where a new face replaced the worst entry, found by reductions along K
(``tl.max(kz, axis=1)``, a compare with the broadcast maximum, a second masked maximum for
the face index) and ranked at the end by a loop of such reductions. Compiled by triton 3.6
on an H100 it dropped faces from some pixels' lists for particular (tile size, num_warps)
pairs (tile 8 with 4 warps, tile 4 with 1 warp, K = 5), while Triton's interpreter and
other pairs agreed with the reference; the cause was not found. (Both pairs seen had fewer
pixels than threads, so the per-pixel results of those reductions were replicated across
threads; a lead, not a diagnosis.) The points kernel, written with slots from the start,
matched the reference exactly on its first compiled run, and this kernel now has the same
structure: everything per pixel is elementwise, the only reductions are "does any pixel of
the block need this face" tests over one-dimensional masks (the same answer however
elements are replicated), and the program holds max(T*T, 32 * num_warps) lanes, padding
with idle lanes so that no pixel is replicated across threads at all.

Backward: one program per block of (pixel, k) slots adds each slot's
vector-Jacobian product into the face's gradient with atomics (order not deterministic), or,
in deterministic mode, writes per-slot contributions that the host sums with ``index_add_``.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ..triton_shared_kernels import insert, last, tile_block, tile_range

KEPS: tl.constexpr = tl.constexpr(1e-8)  # pixel_math.KEPS
CLIP_EPS: tl.constexpr = tl.constexpr(1e-5)  # pixel_math.CLIP_EPS
BIG: tl.constexpr = tl.constexpr(2**31 - 1)  # face index of an empty slot (sorts last)


@triton.jit
def _weights(e0, e1, e2, area, z0, z1, z2, PERSP: tl.constexpr, CLIP: tl.constexpr):
    """Barycentrics (w0, w1, w2), inside, depth pz from the edge values and the area, as
    pixel_math.bary_depth computes them (perspective correction, then clipping)."""
    w0 = e0 / area
    w1 = e1 / area
    w2 = e2 / area
    if PERSP:
        t0 = w0 * z1 * z2
        t1 = w1 * z0 * z2
        t2 = w2 * z0 * z1
        den = t0 + t1 + t2
        w0 = t0 / den
        w1 = t1 / den
        w2 = t2 / den
    inside = (w0 > 0.0) & (w1 > 0.0) & (w2 > 0.0)
    if CLIP:
        c0 = tl.maximum(w0, 0.0)
        c1 = tl.maximum(w1, 0.0)
        c2 = tl.maximum(w2, 0.0)
        s = tl.maximum(c0 + c1 + c2, CLIP_EPS)
        w0 = c0 / s
        w1 = c1 / s
        w2 = c2 / s
    pz = w0 * z0 + w1 * z1 + w2 * z2
    return w0, w1, w2, inside, pz


@triton.jit
def _bary_depth(px, py, x0, y0, z0, x1, y1, z1, x2, y2, z2,
                PERSP: tl.constexpr, CLIP: tl.constexpr):
    """pixel_math.bary_depth: (b0, b1, b2, inside, pz) of pixel centres in one face."""
    area = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0) + KEPS
    e0 = (px - x1) * (y2 - y1) - (py - y1) * (x2 - x1)
    e1 = (px - x2) * (y0 - y2) - (py - y2) * (x0 - x2)
    e2 = (px - x0) * (y1 - y0) - (py - y0) * (x1 - x0)
    return _weights(e0, e1, e2, area, z0, z1, z2, PERSP, CLIP)


@triton.jit
def _edge_dist2(px, py, ax, ay, bx, by):
    """pixel_math.edge_dist2: (squared distance to segment a-b, t); t = -1 if degenerate."""
    ex = bx - ax
    ey = by - ay
    l2 = ex * ex + ey * ey
    deg = l2 <= KEPS
    t = (ex * (px - ax) + ey * (py - ay)) / tl.where(deg, 1.0, l2)
    t = tl.minimum(tl.maximum(t, 0.0), 1.0)
    dx = tl.where(deg, px - bx, px - (ax + t * ex))
    dy = tl.where(deg, py - by, py - (ay + t * ey))
    return dx * dx + dy * dy, tl.where(deg, -1.0, t)


@triton.jit
def _tri_dist2(px, py, x0, y0, x1, y1, x2, y2):
    d01, _t01 = _edge_dist2(px, py, x0, y0, x1, y1)
    d02, _t02 = _edge_dist2(px, py, x0, y0, x2, y2)
    d12, _t12 = _edge_dist2(px, py, x1, y1, x2, y2)
    return tl.minimum(tl.minimum(d01, d02), d12)


@triton.jit
def _load_face(fv_ptr, f):
    b = fv_ptr + f * 9
    return (tl.load(b), tl.load(b + 1), tl.load(b + 2), tl.load(b + 3), tl.load(b + 4),
            tl.load(b + 5), tl.load(b + 6), tl.load(b + 7), tl.load(b + 8))


@triton.jit
def _load_entry(tile_faces_ptr, tile_verts_ptr, e, end):
    """Face index and vertices of tile entry ``e`` (zeros when ``e >= end``)."""
    ok = e < end
    b = tile_verts_ptr + e * 9
    return (tl.load(tile_faces_ptr + e, mask=ok, other=0),
            tl.load(b, mask=ok, other=0.0), tl.load(b + 1, mask=ok, other=0.0),
            tl.load(b + 2, mask=ok, other=0.0), tl.load(b + 3, mask=ok, other=0.0),
            tl.load(b + 4, mask=ok, other=0.0), tl.load(b + 5, mask=ok, other=0.0),
            tl.load(b + 6, mask=ok, other=0.0), tl.load(b + 7, mask=ok, other=0.0),
            tl.load(b + 8, mask=ok, other=0.0))


@triton.jit
def _listable(px, py, x0, y0, z0, x1, y1, z1, x2, y2, z2, radius, blur,
              PERSP: tl.constexpr, CLIP: tl.constexpr, BLUR: tl.constexpr):
    """Whether a face may be listed at the pixels (box, depth >= 0, inside or within the
    blur radius), and its signed squared distance: (ok, sd)."""
    box = ((px >= tl.minimum(tl.minimum(x0, x1), x2) - radius)
           & (px <= tl.maximum(tl.maximum(x0, x1), x2) + radius)
           & (py >= tl.minimum(tl.minimum(y0, y1), y2) - radius)
           & (py <= tl.maximum(tl.maximum(y0, y1), y2) + radius))
    _b0, _b1, _b2, inside, pz = _bary_depth(px, py, x0, y0, z0, x1, y1, z1, x2, y2, z2,
                                            PERSP, CLIP)
    d = _tri_dist2(px, py, x0, y0, x1, y1, x2, y2)
    ok = box & (pz >= 0.0)
    if BLUR:
        ok = ok & (inside | (d < blur))
    else:
        ok = ok & inside
    return ok, tl.where(inside, -d, d)


@triton.jit
def _store_slot(k, zk, fk, px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr, pix,
                pvalid, K, PERSP: tl.constexpr, CLIP: tl.constexpr):
    """Write list slot ``k`` of every pixel: the face, the depth it was ranked by, and the
    barycentrics and signed distance recomputed from the face (the loop's formulas); -1
    where the slot is empty."""
    used = fk != BIG
    b = fv_ptr + tl.where(used, fk, 0).to(tl.int64) * 9
    x0 = tl.load(b, mask=used, other=0.0)
    y0 = tl.load(b + 1, mask=used, other=0.0)
    z0 = tl.load(b + 2, mask=used, other=1.0)
    x1 = tl.load(b + 3, mask=used, other=1.0)
    y1 = tl.load(b + 4, mask=used, other=0.0)
    z1 = tl.load(b + 5, mask=used, other=1.0)
    x2 = tl.load(b + 6, mask=used, other=0.0)
    y2 = tl.load(b + 7, mask=used, other=1.0)
    z2 = tl.load(b + 8, mask=used, other=1.0)
    w0, w1, w2, inside, _pz = _bary_depth(px, py, x0, y0, z0, x1, y1, z1, x2, y2, z2,
                                          PERSP, CLIP)
    d = _tri_dist2(px, py, x0, y0, x1, y1, x2, y2)
    # (k < K as a block mask: Triton's interpreter cannot combine a scalar bool with a
    # block bool)
    real = pvalid & ((tl.zeros_like(fk) + k) < K)
    out = pix * K + k
    tl.store(p2f_ptr + out, tl.where(used, fk, -1).to(tl.int64), mask=real)
    tl.store(zbuf_ptr + out, tl.where(used, zk, -1.0), mask=real)
    tl.store(dists_ptr + out, tl.where(used, tl.where(inside, -d, d), -1.0), mask=real)
    tl.store(bary_ptr + out * 3, tl.where(used, w0, -1.0), mask=real)
    tl.store(bary_ptr + out * 3 + 1, tl.where(used, w1, -1.0), mask=real)
    tl.store(bary_ptr + out * 3 + 2, tl.where(used, w2, -1.0), mask=real)


@triton.jit
def _store_round(k0, z0, f0, z1, f1, z2, f2, z3, f3, z4, f4, z5, f5, z6, f6, z7, f7,
                 px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr, pix, pvalid, K,
                 S: tl.constexpr, PERSP: tl.constexpr, CLIP: tl.constexpr):
    """Write the S slots of a round as list entries k0 .. k0 + S - 1."""
    _store_slot(k0, z0, f0, px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr, pix,
                pvalid, K, PERSP, CLIP)
    if S > 1:
        _store_slot(k0 + 1, z1, f1, px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr,
                    pix, pvalid, K, PERSP, CLIP)
    if S > 2:
        _store_slot(k0 + 2, z2, f2, px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr,
                    pix, pvalid, K, PERSP, CLIP)
    if S > 3:
        _store_slot(k0 + 3, z3, f3, px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr,
                    pix, pvalid, K, PERSP, CLIP)
    if S > 4:
        _store_slot(k0 + 4, z4, f4, px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr,
                    pix, pvalid, K, PERSP, CLIP)
    if S > 5:
        _store_slot(k0 + 5, z5, f5, px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr,
                    pix, pvalid, K, PERSP, CLIP)
    if S > 6:
        _store_slot(k0 + 6, z6, f6, px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr,
                    pix, pvalid, K, PERSP, CLIP)
    if S > 7:
        _store_slot(k0 + 7, z7, f7, px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr,
                    pix, pvalid, K, PERSP, CLIP)


@triton.jit
def raster_forward_kernel(
    fv_ptr,  # (F, 9) face vertices, compute dtype
    nb_ptr,  # (F,) int32 other half of a clipped face if it is rasterizable, else -1
    tile_start_ptr,  # (n_tiles + 1,) int64
    tile_faces_ptr,  # (total,) int32, ascending within a tile
    tile_verts_ptr,  # (total, 9) the entry's face vertices (read in memory order)
    ys_ptr, xs_ptr,  # (H,), (W,) pixel centres, compute dtype
    consts_ptr,  # (2,) [blur_radius, sqrt(blur_radius)], compute dtype
    p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr,  # outputs (N, H, W, K[, 3])
    H, W, n_ty, n_tx, K, n_rounds,
    T: tl.constexpr, BLOCK: tl.constexpr, S: tl.constexpr, BLUR: tl.constexpr,
    PERSP: tl.constexpr, CLIP: tl.constexpr,
):
    pid = tl.program_id(0)
    # BLOCK >= T * T lanes, at least one per thread (lanes >= T * T are idle padding), so
    # that no pixel's values are replicated across threads.
    offs, pvalid, px, py, pix = tile_block(pid, ys_ptr, xs_ptr, H, W, n_ty, n_tx, T, BLOCK)
    blur = tl.load(consts_ptr)
    radius = tl.load(consts_ptr + 1)
    inf = tl.zeros_like(px) + float("inf")
    big = tl.zeros_like(offs) + BIG
    # Listed depths are convex combinations of the vertex depths where there is no blur or
    # the barycentrics are clipped: then a face whose depth bound loses at every pixel of
    # the block is skipped (EARLY_Z: it cannot beat the worst slot; BEHIND: it cannot come
    # after the previous round's last entry, where the weights also sum to 1).
    EARLY_Z: tl.constexpr = (not BLUR) or CLIP
    BEHIND: tl.constexpr = CLIP or (PERSP and not BLUR)
    start = tl.load(tile_start_ptr + pid)
    end = tl.load(tile_start_ptr + pid + 1)
    # Round j lists the S best (depth, face) after (lz, lf), the last entry of round j - 1
    # (-inf: none yet; +inf: the pixel's list ended in round j - 1).
    lz = -inf
    lf = tl.zeros_like(offs) - 1
    for rnd in range(0, n_rounds):
        z0, f0, z1, f1, z2, f2, z3, f3 = inf, big, inf, big, inf, big, inf, big
        z4, f4, z5, f5, z6, f6, z7, f7 = inf, big, inf, big, inf, big, inf, big
        active = pvalid & (lz < float("inf"))
        if tl.max(active.to(tl.int32), axis=0) > 0:
            # The next entry is loaded one iteration ahead, so that its load latency
            # overlaps the current face's work (the loop is otherwise bound by these
            # dependent scalar loads).
            nf, nx0, ny0, nz0, nx1, ny1, nz1, nx2, ny2, nz2 = _load_entry(
                tile_faces_ptr, tile_verts_ptr, start, end)
            for e in range(start, end):
                f = nf
                x0, y0, z0_, x1, y1, z1_, x2, y2, z2_ = (nx0, ny0, nz0, nx1, ny1, nz1, nx2,
                                                         ny2, nz2)
                nf, nx0, ny0, nz0, nx1, ny1, nz1, nx2, ny2, nz2 = _load_entry(
                    tile_faces_ptr, tile_verts_ptr, e + 1, end)
                # The worst slot, which a face must beat (+inf while the list has room).
                zl, _fl = last(z0, f0, z1, f1, z2, f2, z3, f3, z4, f4, z5, f5, z6, f6, z7,
                               f7, S)
                m = (active
                     & (px >= tl.minimum(tl.minimum(x0, x1), x2) - radius)
                     & (px <= tl.maximum(tl.maximum(x0, x1), x2) + radius)
                     & (py >= tl.minimum(tl.minimum(y0, y1), y2) - radius)
                     & (py <= tl.maximum(tl.maximum(y0, y1), y2) + radius))
                area = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0) + KEPS
                e0 = (px - x1) * (y2 - y1) - (py - y1) * (x2 - x1)
                e1 = (px - x2) * (y0 - y2) - (py - y2) * (x0 - x2)
                e2 = (px - x0) * (y1 - y0) - (py - y0) * (x1 - x0)
                if BLUR:
                    # Skip the face for the whole block when every pixel is farther than
                    # the blur radius from some edge's line on its outer side (a lower
                    # bound of the distance to the triangle, with slack for rounding); the
                    # mask itself is exact below. (scalar masks are spelled as where() on
                    # scalars: Triton's interpreter cannot combine a scalar bool with a
                    # block bool)
                    l0 = (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1)
                    l1 = (x0 - x2) * (x0 - x2) + (y0 - y2) * (y0 - y2)
                    l2 = (x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)
                    l0 = tl.where(l0 > KEPS, l0, float("inf"))  # degenerate edge: no bound
                    l1 = tl.where(l1 > KEPS, l1, float("inf"))
                    l2 = tl.where(l2 > KEPS, l2, float("inf"))
                    lb = tl.where(e0 * area < 0.0, e0 * e0 / l0, 0.0)
                    lb = tl.maximum(lb, tl.where(e1 * area < 0.0, e1 * e1 / l1, 0.0))
                    lb = tl.maximum(lb, tl.where(e2 * area < 0.0, e2 * e2 / l2, 0.0))
                    go = m & (lb * 0.999 < blur)
                else:
                    m = m & (e0 * area > 0.0) & (e1 * area > 0.0) & (e2 * area > 0.0)
                    go = m
                if EARLY_Z:
                    # Inside a face (or clipped to it) the depth is >= min vertex depth
                    # times the sum of the barycentrics, (area - KEPS) / area, minus
                    # rounding: skip the face for the block when that bound already loses
                    # everywhere.
                    zb = (tl.minimum(tl.minimum(z0_, z1_), z2_)
                          * tl.minimum((area - KEPS) / area, 1.0))
                    go = go & (zb * 0.99999 < zl)
                if BEHIND:
                    # The weights are >= 0 and sum to 1 (at most 1 when clipped), so the
                    # depth is <= the largest vertex depth, plus rounding.
                    zt = tl.maximum(tl.maximum(z0_, z1_), z2_) * 1.00001
                    go = go & (zt >= lz)
                if tl.max(go.to(tl.int32), axis=0) > 0:
                    w0, w1, w2, inside, pz = _weights(e0, e1, e2, area, z0_, z1_, z2_, PERSP,
                                                      CLIP)
                    m = m & (pz >= 0.0)
                    if BLUR:
                        d = _tri_dist2(px, py, x0, y0, x1, y1, x2, y2)
                        m = m & (inside | (d < blur))
                    else:
                        m = m & inside
                    g = tl.load(nb_ptr + f)
                    if g >= 0:
                        # Halves of a face split by near-plane clipping: only the one with
                        # the smaller signed distance is listed (ties: the lower index), as
                        # in numba.py.
                        dd = _tri_dist2(px, py, x0, y0, x1, y1, x2, y2)
                        sd = tl.where(inside, -dd, dd)
                        gx0, gy0, gz0, gx1, gy1, gz1, gx2, gy2, gz2 = _load_face(fv_ptr, g)
                        g_ok, g_sd = _listable(px, py, gx0, gy0, gz0, gx1, gy1, gz1, gx2,
                                               gy2, gz2, radius, blur, PERSP, CLIP, BLUR)
                        lower = (tl.zeros_like(offs) + g) < f
                        m = m & ~(g_ok & ((g_sd < sd) | ((g_sd == sd) & lower)))
                    # f is larger than every index listed in this round (faces come in
                    # ascending order), so it must beat the worst slot's depth strictly,
                    # and sort after the previous round's last entry.
                    take = m & (pz < zl) & ((pz > lz) | ((pz == lz) & (f > lf)))
                    if tl.max(take.to(tl.int32), axis=0) > 0:
                        cz = tl.where(take, pz, inf)
                        cf = tl.where(take, f, big)
                        z0, f0, z1, f1, z2, f2, z3, f3, z4, f4, z5, f5, z6, f6, z7, f7 = insert(
                            cz, cf, z0, f0, z1, f1, z2, f2, z3, f3, z4, f4, z5, f5, z6, f6,
                            z7, f7, S)
        _store_round(rnd * S, z0, f0, z1, f1, z2, f2, z3, f3, z4, f4, z5, f5, z6, f6, z7, f7,
                     px, py, fv_ptr, p2f_ptr, zbuf_ptr, bary_ptr, dists_ptr, pix, pvalid, K,
                     S, PERSP, CLIP)
        lz, lf = last(z0, f0, z1, f1, z2, f2, z3, f3, z4, f4, z5, f5, z6, f6, z7, f7, S)


@triton.jit
def raster_backward_kernel(
    fv_ptr,  # (F, 9) face vertices, compute dtype
    p2f_ptr,  # (M,) int64, M = N*H*W*K
    gz_ptr, gb_ptr, gd_ptr,  # (M,), (M, 3), (M,) output gradients, compute dtype
    ys_ptr, xs_ptr,
    grad_ptr,  # (F, 9) accumulated with atomics, or (M, 9) per-slot terms if not ATOMIC
    M, H, W, K,
    BLOCK: tl.constexpr, PERSP: tl.constexpr, CLIP: tl.constexpr, ATOMIC: tl.constexpr,
):
    """pixel_math.fragment_vjp over a block of (pixel, k) slots."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    f = tl.load(p2f_ptr + i, mask=i < M, other=-1)
    m = f >= 0
    pix = i // K
    c = pix % W
    r = (pix // W) % H
    px = tl.load(xs_ptr + c, mask=m, other=0.0)
    py = tl.load(ys_ptr + r, mask=m, other=0.0)
    fb = fv_ptr + tl.where(m, f, 0) * 9
    x0 = tl.load(fb, mask=m, other=0.0)
    y0 = tl.load(fb + 1, mask=m, other=0.0)
    z0 = tl.load(fb + 2, mask=m, other=1.0)
    x1 = tl.load(fb + 3, mask=m, other=1.0)
    y1 = tl.load(fb + 4, mask=m, other=0.0)
    z1 = tl.load(fb + 5, mask=m, other=1.0)
    x2 = tl.load(fb + 6, mask=m, other=0.0)
    y2 = tl.load(fb + 7, mask=m, other=1.0)
    z2 = tl.load(fb + 8, mask=m, other=1.0)
    gz = tl.load(gz_ptr + i, mask=m, other=0.0)
    gb0 = tl.load(gb_ptr + i * 3, mask=m, other=0.0)
    gb1 = tl.load(gb_ptr + i * 3 + 1, mask=m, other=0.0)
    gb2 = tl.load(gb_ptr + i * 3 + 2, mask=m, other=0.0)
    gd = tl.load(gd_ptr + i, mask=m, other=0.0)
    # ---- forward recompute
    area = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0) + KEPS
    e0 = (px - x1) * (y2 - y1) - (py - y1) * (x2 - x1)
    e1 = (px - x2) * (y0 - y2) - (py - y2) * (x0 - x2)
    e2 = (px - x0) * (y1 - y0) - (py - y0) * (x1 - x0)
    w0 = e0 / area
    w1 = e1 / area
    w2 = e2 / area
    b0 = w0
    b1 = w1
    b2 = w2
    if PERSP:
        t0 = w0 * z1 * z2
        t1 = w1 * z0 * z2
        t2 = w2 * z0 * z1
        den = t0 + t1 + t2
        b0 = t0 / den
        b1 = t1 / den
        b2 = t2 / den
    inside = (b0 > 0.0) & (b1 > 0.0) & (b2 > 0.0)
    o0 = b0
    o1 = b1
    o2 = b2
    if CLIP:
        c0 = tl.maximum(b0, 0.0)
        c1 = tl.maximum(b1, 0.0)
        c2 = tl.maximum(b2, 0.0)
        s_raw = c0 + c1 + c2
        s = tl.maximum(s_raw, CLIP_EPS)
        o0 = c0 / s
        o1 = c1 / s
        o2 = c2 / s
    # ---- depth: zbuf = o . z
    g0 = gb0 + gz * z0
    g1 = gb1 + gz * z1
    g2 = gb2 + gz * z2
    gz0 = gz * o0
    gz1 = gz * o1
    gz2 = gz * o2
    # ---- clip backward: o_i = c_i / s
    if CLIP:
        gs = tl.where(s_raw >= CLIP_EPS, -(g0 * c0 + g1 * c1 + g2 * c2) / (s * s), 0.0)
        g0 = tl.where(b0 >= 0.0, g0 / s + gs, 0.0)
        g1 = tl.where(b1 >= 0.0, g1 / s + gs, 0.0)
        g2 = tl.where(b2 >= 0.0, g2 / s + gs, 0.0)
    # ---- perspective backward: b_i = t_i / den
    if PERSP:
        gden = -(g0 * t0 + g1 * t1 + g2 * t2) / (den * den)
        gt0 = g0 / den + gden
        gt1 = g1 / den + gden
        gt2 = g2 / den + gden
        g0 = gt0 * z1 * z2
        g1 = gt1 * z0 * z2
        g2 = gt2 * z0 * z1
        gz0 += gt1 * w1 * z2 + gt2 * w2 * z1
        gz1 += gt0 * w0 * z2 + gt2 * w2 * z0
        gz2 += gt0 * w0 * z1 + gt1 * w1 * z0
    # ---- screen barycentrics backward: w_i = e_i / area
    ge0 = g0 / area
    ge1 = g1 / area
    ge2 = g2 / area
    garea = -(g0 * e0 + g1 * e1 + g2 * e2) / (area * area)
    gx0 = ge1 * (y2 - py) + ge2 * (py - y1) + garea * (y2 - y1)
    gy0 = ge1 * (px - x2) + ge2 * (x1 - px) + garea * (x1 - x2)
    gx1 = ge0 * (py - y2) + ge2 * (y0 - py) + garea * (y0 - y2)
    gy1 = ge0 * (x2 - px) + ge2 * (px - x0) + garea * (x2 - x0)
    gx2 = ge0 * (y1 - py) + ge1 * (py - y0) + garea * (y1 - y0)
    gy2 = ge0 * (px - x1) + ge1 * (x0 - px) + garea * (x0 - x1)
    # ---- distance backward (closest edge, first of e01, e02, e12 on ties)
    d01, t01 = _edge_dist2(px, py, x0, y0, x1, y1)
    d02, t02 = _edge_dist2(px, py, x0, y0, x2, y2)
    d12, t12 = _edge_dist2(px, py, x1, y1, x2, y2)
    s01 = (d01 <= d02) & (d01 <= d12)
    s02 = ~s01 & (d02 <= d12)
    a_is0 = s01 | s02  # edge starts at vertex 0 (else 1)
    b_is1 = s01  # edge ends at vertex 1 (else 2)
    t = tl.where(s01, t01, tl.where(s02, t02, t12))
    ax = tl.where(a_is0, x0, x1)
    ay = tl.where(a_is0, y0, y1)
    bx = tl.where(b_is1, x1, x2)
    by = tl.where(b_is1, y1, y2)
    deg = t < 0.0  # degenerate edge: dist = |p - b|^2
    qx = tl.where(deg, bx - px, ax + t * (bx - ax) - px)
    qy = tl.where(deg, by - py, ay + t * (by - ay) - py)
    wa = tl.where(deg, 0.0, 1.0 - t)
    wb = tl.where(deg, 1.0, t)
    gdd = tl.where(inside, -gd, gd) * 2.0
    use = gd != 0.0
    ga_x = tl.where(use, gdd * wa * qx, 0.0)
    ga_y = tl.where(use, gdd * wa * qy, 0.0)
    gb_x = tl.where(use, gdd * wb * qx, 0.0)
    gb_y = tl.where(use, gdd * wb * qy, 0.0)
    gx0 += tl.where(a_is0, ga_x, 0.0)
    gy0 += tl.where(a_is0, ga_y, 0.0)
    gx1 += tl.where(a_is0, 0.0, ga_x) + tl.where(b_is1, gb_x, 0.0)
    gy1 += tl.where(a_is0, 0.0, ga_y) + tl.where(b_is1, gb_y, 0.0)
    gx2 += tl.where(b_is1, 0.0, gb_x)
    gy2 += tl.where(b_is1, 0.0, gb_y)
    if ATOMIC:
        ob = grad_ptr + tl.where(m, f, 0) * 9
        tl.atomic_add(ob, gx0, mask=m, sem="relaxed")
        tl.atomic_add(ob + 1, gy0, mask=m, sem="relaxed")
        tl.atomic_add(ob + 2, gz0, mask=m, sem="relaxed")
        tl.atomic_add(ob + 3, gx1, mask=m, sem="relaxed")
        tl.atomic_add(ob + 4, gy1, mask=m, sem="relaxed")
        tl.atomic_add(ob + 5, gz1, mask=m, sem="relaxed")
        tl.atomic_add(ob + 6, gx2, mask=m, sem="relaxed")
        tl.atomic_add(ob + 7, gy2, mask=m, sem="relaxed")
        tl.atomic_add(ob + 8, gz2, mask=m, sem="relaxed")
    else:
        ob = grad_ptr + i * 9
        mm = i < M
        tl.store(ob, tl.where(m, gx0, 0.0), mask=mm)
        tl.store(ob + 1, tl.where(m, gy0, 0.0), mask=mm)
        tl.store(ob + 2, tl.where(m, gz0, 0.0), mask=mm)
        tl.store(ob + 3, tl.where(m, gx1, 0.0), mask=mm)
        tl.store(ob + 4, tl.where(m, gy1, 0.0), mask=mm)
        tl.store(ob + 5, tl.where(m, gz1, 0.0), mask=mm)
        tl.store(ob + 6, tl.where(m, gx2, 0.0), mask=mm)
        tl.store(ob + 7, tl.where(m, gy2, 0.0), mask=mm)
        tl.store(ob + 8, tl.where(m, gz2, 0.0), mask=mm)


# ---- binning (see triton.bin_faces): per-face setup; the (tile, face) entries are written
# by triton_shared_kernels.tile_entries_kernel


@triton.jit
def face_setup_kernel(
    fv_ptr,  # (F, 9) face vertices, compute dtype
    fm_ptr,  # (F,) int64 image of each face (-1 = skip)
    count_ptr, nan_ptr, ok_ptr, r0_ptr, c0_ptr, ntx_ptr,  # (F,) int32 outputs
    F, n_meshes, H, W, radius, yfirst, ystep, xfirst, xstep,  # float64 scalars
    TILE: tl.constexpr, CULL: tl.constexpr, BLOCK: tl.constexpr,
):
    """Whether each face is rasterized (like reference._face_ok), its pixel range grown by
    the blur radius (numba_shared.index_range, float64, conservative by 1e-3 pixel) and its
    number of tiles. Launched without fp fusion, so the area test rounds like torch's."""
    f = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    fm_ok = f < F
    b = fv_ptr + f * 9
    x0 = tl.load(b, mask=fm_ok, other=0.0)
    y0 = tl.load(b + 1, mask=fm_ok, other=0.0)
    z0 = tl.load(b + 2, mask=fm_ok, other=0.0)
    x1 = tl.load(b + 3, mask=fm_ok, other=0.0)
    y1 = tl.load(b + 4, mask=fm_ok, other=0.0)
    z1 = tl.load(b + 5, mask=fm_ok, other=0.0)
    x2 = tl.load(b + 6, mask=fm_ok, other=0.0)
    y2 = tl.load(b + 7, mask=fm_ok, other=0.0)
    z2 = tl.load(b + 8, mask=fm_ok, other=0.0)
    mesh = tl.load(fm_ptr + f, mask=fm_ok, other=-1)
    # NaN or inf: x - x is NaN for both, 0 for every finite x
    nan = (((x0 - x0) != 0) | ((y0 - y0) != 0) | ((z0 - z0) != 0) | ((x1 - x1) != 0)
           | ((y1 - y1) != 0) | ((z1 - z1) != 0) | ((x2 - x2) != 0) | ((y2 - y2) != 0)
           | ((z2 - z2) != 0))
    area = (x0 - x1) * (y2 - y1) - (y0 - y1) * (x2 - x1)
    ok = fm_ok & (mesh >= 0) & (mesh < n_meshes) & ~nan
    ok = ok & (tl.minimum(tl.minimum(z0, z1), z2) >= KEPS) & (tl.abs(area) > KEPS)
    if CULL:
        ok = ok & (area >= 0.0)
    xa = x0.to(tl.float64)
    xb = x1.to(tl.float64)
    xc = x2.to(tl.float64)
    ya = y0.to(tl.float64)
    yb = y1.to(tl.float64)
    yc = y2.to(tl.float64)
    xlo = tl.minimum(tl.minimum(xa, xb), xc) - radius
    xhi = tl.maximum(tl.maximum(xa, xb), xc) + radius
    ylo = tl.minimum(tl.minimum(ya, yb), yc) - radius
    yhi = tl.maximum(tl.maximum(ya, yb), yc) + radius
    ok, r0, c0, ntx, count = tile_range(ok, xlo, xhi, ylo, yhi, H, W, yfirst, ystep, xfirst,
                                        xstep, TILE)
    tl.store(count_ptr + f, count, mask=fm_ok)
    tl.store(nan_ptr + f, nan.to(tl.int32), mask=fm_ok)
    tl.store(ok_ptr + f, ok.to(tl.int32), mask=fm_ok)
    tl.store(r0_ptr + f, r0, mask=fm_ok)
    tl.store(c0_ptr + f, c0, mask=fm_ok)
    tl.store(ntx_ptr + f, ntx, mask=fm_ok)

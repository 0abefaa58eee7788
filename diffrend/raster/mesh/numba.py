"""Numba CPU kernels of the mesh rasterizer: forward (pick K faces per pixel) and backward.

Forward: faces are binned into tiles (:func:`face_ranges_and_counts`, one pass over the
faces for their pixel ranges and how many entries each adds to each tile, then
:func:`bin_faces` writes the entries); each (mesh, tile) task, dealt round-robin to a fixed
number of parallel workers, walks its faces in ascending index order and, for each pixel of
the face's span in each row of the tile, keeps a sorted list of the K nearest faces (by
depth, then face index). Backward: a fixed number of row bands (set by the problem size, not
the thread count) each add their (pixel, k) contributions into their own gradient buffer;
the buffers are summed in order (deterministic).
Both compile once and are cached on disk (``cache=True``).
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from ...threads import kernel_lock
from ..fragments import RasterParams, empty_fragment_buffers
from ..numba_shared import (
    N_CHUNKS,
    count_tiles,
    index_range,
    n_row_bands,
    offsets,
    pixel_steps,
    set_empty,
    sum_row_bands,
    tile_bounds,
    tile_shift,
    tile_span,
    to_numpy,
)
from ..tiles import pixel_centers_ndc, tile_grid
from .pixel_math import KEPS, bary_depth, face_area, fragment_vjp, tri_dist2

TILE = 16
TILE_WORKERS = 64  # forward tasks per call: each reuses its scratch lists over its tiles


# ---- binning: each face's pixel range, then its entries in the tiles of that range


@nb.njit(cache=True, inline="always")
def face_xy(fv, f):
    """(x0, y0, x1, y1, x2, y2) of face f's screen vertices, in float64."""
    return (np.float64(fv[f, 0, 0]), np.float64(fv[f, 0, 1]), np.float64(fv[f, 1, 0]),
            np.float64(fv[f, 1, 1]), np.float64(fv[f, 2, 0]), np.float64(fv[f, 2, 1]))


@nb.njit(cache=True, inline="always")
def face_box(fv, f, radius):
    """(xmin, xmax, ymin, ymax) of face f's screen bounding box grown by ``radius``."""
    x0, y0, x1, y1, x2, y2 = face_xy(fv, f)
    return (
        min(x0, x1, x2) - radius,
        max(x0, x1, x2) + radius,
        min(y0, y1, y2) - radius,
        max(y0, y1, y2) + radius,
    )


@nb.njit(cache=True, inline="always")
def _face_range(fv, f, face_mesh, radius, cull_backfaces, ys, xs, ystep, xstep, rng):
    """Writes face f's pixel range into rng[f] (empty if it is never rasterized); returns
    whether a coordinate is NaN or inf (then the range is empty too)."""
    set_empty(rng, f)
    for i in range(3):
        for j in range(3):
            if not np.isfinite(fv[f, i, j]):
                return True
    zmin = min(fv[f, 0, 2], fv[f, 1, 2], fv[f, 2, 2])
    x0, y0, x1, y1, x2, y2 = face_xy(fv, f)
    area = face_area(x0, y0, x1, y1, x2, y2)
    if (
        face_mesh[f] < 0
        or not (zmin >= KEPS)
        or not (abs(area) > KEPS)
        or (cull_backfaces and area < 0.0)
    ):
        return False
    xmin, xmax, ymin, ymax = face_box(fv, f, radius)
    r0, r1 = index_range(ymin, ymax, np.float64(ys[0]), ystep, ys.shape[0])
    c0, c1 = index_range(xmin, xmax, np.float64(xs[0]), xstep, xs.shape[0])
    if r0 <= r1 and c0 <= c1:
        rng[f, 0] = r0
        rng[f, 1] = r1
        rng[f, 2] = c0
        rng[f, 3] = c1
    return False


@nb.njit(parallel=True, cache=True)
def face_ranges_and_counts(fv, face_mesh, radius, cull_backfaces, ys, xs, tile, n_ty, n_tx,
                           n_tiles):
    """The per-face pass of binning: each face's pixel range, and the entries it adds to
    each tile, counted per fixed chunk of faces (one pass over the faces).

    Args:
        fv: (F, 3, 3) screen-space face vertices (x, y NDC; z view depth).
        face_mesh: (F,) mesh index of each face (-1 = skip).
        radius: sqrt(blur_radius), how far outside its bbox a face can reach.
        ys, xs: (H,), (W,) pixel-centre NDC coordinates.
        tile: tile side in pixels; n_ty, n_tx: tiles per column and row; n_tiles: N*TY*TX.

    Returns:
        rng: (F, 4) int32 [row0, row1, col0, col1] inclusive; row0 > row1 if the face is
            skipped (zero area, a vertex at or behind the camera, culled back face, off image,
            NaN or inf).
        n_nan: how many faces have a NaN or inf coordinate.
        counts: (N_CHUNKS, n_tiles) int64 entries of each chunk of faces in each tile.
    """
    F = fv.shape[0]
    rng = np.empty((F, 4), np.int32)
    counts = np.zeros((N_CHUNKS, n_tiles), np.int64)
    nans = np.zeros(N_CHUNKS, np.int64)
    ystep, xstep = pixel_steps(ys, xs)
    shift = tile_shift(tile)
    for ch in nb.prange(N_CHUNKS):
        for f in range(ch * F // N_CHUNKS, (ch + 1) * F // N_CHUNKS):
            if _face_range(fv, f, face_mesh, radius, cull_backfaces, ys, xs, ystep, xstep,
                           rng):
                nans[ch] += 1
            elif rng[f, 0] <= rng[f, 1]:
                count_tiles(rng, f, face_mesh, tile, shift, n_ty, n_tx, counts[ch])
    return rng, nans.sum(), counts


@nb.njit(parallel=True, cache=True)
def _fill(fv, rng, face_mesh, tile, n_ty, n_tx, cursor, out, rec_v, rec_r):
    """Second binning pass: write each face (its vertices, its pixel range) into every tile
    it touches, at its chunk's cursor."""
    F = rng.shape[0]
    shift = tile_shift(tile)
    for ch in nb.prange(N_CHUNKS):
        f0 = ch * F // N_CHUNKS
        f1 = (ch + 1) * F // N_CHUNKS
        for f in range(f0, f1):
            if rng[f, 0] > rng[f, 1]:
                continue
            base = face_mesh[f] * n_ty * n_tx
            ty0, ty1, tx0, tx1 = tile_span(rng, f, tile, shift)
            for ty in range(ty0, ty1 + 1):
                for tx in range(tx0, tx1 + 1):
                    t = base + ty * n_tx + tx
                    j = cursor[ch, t]
                    out[j] = f
                    # The face's data goes next to its entry: the rasterizer then reads
                    # each tile's faces in memory order (faces listed in one tile can be
                    # anywhere in fv; here fv is read in order).
                    for i in range(3):
                        for k in range(3):
                            rec_v[j, 3 * i + k] = fv[f, i, k]
                    for k in range(4):
                        rec_r[j, k] = rng[f, k]
                    cursor[ch, t] += 1


def bin_faces(
    fv: np.ndarray,
    rng: np.ndarray,
    face_mesh: np.ndarray,
    counts: np.ndarray,
    tile: int,
    n_ty: int,
    n_tx: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """List, for each (mesh, tile), the faces whose pixel range touches it.

    Args:
        fv: (F, 3, 3) face vertices. rng: (F, 4) int32 pixel ranges and counts: (N_CHUNKS,
            N * TY * TX) entries per (chunk, tile), both from
            :func:`face_ranges_and_counts`. face_mesh: (F,) int64 mesh index of each face.
        tile: tile side in pixels. n_ty, n_tx: tiles per column and per row of an image.

    Returns:
        tile_start: (N * TY * TX + 1,) int64 offsets into the entries.
        tile_faces: (total,) int64 face index of each entry, ascending within each tile.
        rec_v: (total, 9) the entry's face vertices. rec_r: (total, 4) its pixel range.
    """
    with kernel_lock():  # (see diffrend.threads)
        start, cursor = offsets(counts)
        total = int(start[-1])
        out = np.empty(total, np.int64)
        rec_v = np.empty((total, 9), fv.dtype)
        rec_r = np.empty((total, 4), np.int32)
        _fill(fv, rng, face_mesh, tile, n_ty, n_tx, cursor, out, rec_v, rec_r)
    return start, out, rec_v, rec_r


# ---- forward and backward


@nb.njit(cache=True, inline="always")
def _insert(kz, kf, kd, kb, base, cnt, K, pz, f, d, b0, b1, b2):
    """Insert into the pixel's list sorted by (depth, face); returns the new count."""
    if cnt == K and not (pz < kz[base + K - 1]):
        return cnt  # ties go to the lower face index, which is already there
    pos = cnt if cnt < K else K - 1
    while pos > 0 and kz[base + pos - 1] > pz:
        if pos < K:
            kz[base + pos] = kz[base + pos - 1]
            kf[base + pos] = kf[base + pos - 1]
            kd[base + pos] = kd[base + pos - 1]
            for j in range(3):
                kb[(base + pos) * 3 + j] = kb[(base + pos - 1) * 3 + j]
        pos -= 1
    kz[base + pos] = pz
    kf[base + pos] = f
    kd[base + pos] = d
    kb[(base + pos) * 3] = b0
    kb[(base + pos) * 3 + 1] = b1
    kb[(base + pos) * 3 + 2] = b2
    return min(cnt + 1, K)


@nb.njit(cache=True)
def _neighbor_wins(fv, g, f, sd, px, py, radius, blur, rng, persp, clip):
    """Whether face g (the other half of f) is listable at the pixel and beats f."""
    if rng[g, 0] > rng[g, 1]:
        return False  # never rasterized (zero area, culled, ...)
    bx0, bx1, by0, by1 = face_box(fv, g, radius)
    if px > bx1 or px < bx0 or py > by1 or py < by0:
        return False
    x0, y0, x1, y1, x2, y2 = face_xy(fv, g)
    _, _, _, inside, pz = bary_depth(
        px, py, x0, y0, np.float64(fv[g, 0, 2]), x1, y1, np.float64(fv[g, 1, 2]),
        x2, y2, np.float64(fv[g, 2, 2]), persp, clip,
    )
    if pz < 0.0:
        return False
    d = tri_dist2(px, py, x0, y0, x1, y1, x2, y2)
    if not inside and d >= blur:
        return False
    sd_g = -d if inside else d
    return sd_g < sd or (sd_g == sd and g < f)


@nb.njit(cache=True, inline="always")
def _edge_line(xa, ya, xb, yb, area):
    """Edge (a, b)'s inside test ``e * area > 0``, with ``e = (x - xa) (yb - ya) - (py - ya)
    (xb - xa)`` as the kernel writes it, solved for x once per face: (side, slope). side 1:
    inside where x > the edge's x in the row, ``xa + (py - ya) * slope``; side -1: where x is
    below it; side 0 (a horizontal edge): the whole row is inside or outside, as the sign of
    ``-(py - ya) * slope`` says (slope then holds ``(xb - xa) * area``)."""
    m = yb - ya
    ms = m * area
    if ms > 0.0:
        return 1, (xb - xa) / m
    if ms < 0.0:
        return -1, (xb - xa) / m
    return 0, (xb - xa) * area


@nb.njit(cache=True, inline="always")
def _edge_bound(side, xa, ya, slope, py, lo, hi):
    """Narrow [lo, hi] (pixel x) to the edge's inside half of the row at height ``py`` (see
    :func:`_edge_line`); empty (lo > hi) when the row is outside."""
    if side > 0:
        lo = max(lo, xa + (py - ya) * slope)
    elif side < 0:
        hi = min(hi, xa + (py - ya) * slope)
    elif not (-(py - ya) * slope > 0.0):
        return 1.0, -1.0
    return lo, hi


@nb.njit(cache=True, inline="always")
def _row_span(lo, hi, x_first, inv_step, c_a, c_b):
    """The columns [c_a, c_b] of a row narrowed to the x interval [lo, hi] where the face's
    three edge tests can pass, widened by one column for rounding; (c_a, c_b) with c_a > c_b
    when the row misses the face. Column c's x is ``x_first - c * step``."""
    if not (lo <= hi):  # (also NaN: then the columns stay as they were)
        if lo > hi:
            return c_a, c_a - 1
        return c_a, c_b
    # x decreases with the column: the span's high x is its first column
    first = (x_first - hi) * inv_step - 1.0
    last = (x_first - lo) * inv_step + 1.0
    if first > c_a:
        c_a = int(np.floor(min(first, np.float64(c_b + 1))))
    if last < c_b:
        c_b = int(np.ceil(max(last, np.float64(c_a - 1))))
    return c_a, c_b


@nb.njit(parallel=True, cache=True)
def _forward_tiles(
    fv, radius, rng, neighbor, tile_start, tile_faces, rec_v, rec_r, ys, xs, n_meshes, K,
    tile, blur, persp, clip, p2f, zbuf, bary, dists,
):
    H = ys.shape[0]
    W = xs.shape[0]
    n_ty = -(-H // tile)
    n_tx = -(-W // tile)
    has_neighbors = False
    for f in range(neighbor.shape[0]):
        if neighbor[f] >= 0:
            has_neighbors = True
            break
    # columns' x decrease evenly from x_first (to float32 rounding): a span in x maps to
    # columns (step 0: one column, no spans)
    x_first = np.float64(xs[0])
    step = (x_first - np.float64(xs[W - 1])) / (W - 1) if W > 1 else 0.0
    spans = blur <= 0.0 and step > 0.0
    inv_step = 1.0 / step if spans else 0.0
    n_tasks = n_meshes * n_ty * n_tx
    # Tasks are dealt round-robin to a fixed number of workers, each with one set of
    # per-pixel lists reused across its tiles: a thousand small allocations fewer per call,
    # and neighbouring tiles (alike in cost) go to different workers.
    n_workers = min(n_tasks, TILE_WORKERS)
    for wk in nb.prange(n_workers):
        cnt = np.empty(tile * tile, np.int64)
        kz = np.empty(tile * tile * K, np.float64)
        kf = np.empty(tile * tile * K, np.int64)
        kd = np.empty(tile * tile * K, np.float64)
        kb = np.empty(tile * tile * K * 3, np.float64)
        for tid in range(wk, n_tasks, n_workers):
            _tile_fragments(
                tid, fv, radius, rng, neighbor, has_neighbors, tile_start, tile_faces, rec_v,
                rec_r, ys, xs, n_ty, n_tx, K, tile, blur, persp, clip, spans, x_first,
                inv_step, cnt, kz, kf, kd, kb, p2f, zbuf, bary, dists,
            )


@nb.njit(cache=True)
def _tile_fragments(
    tid, fv, radius, rng, neighbor, has_neighbors, tile_start, tile_faces, rec_v, rec_r, ys,
    xs, n_ty, n_tx, K, tile, blur, persp, clip, spans, x_first, inv_step, cnt, kz, kf, kd, kb,
    p2f, zbuf, bary, dists,
):
    """One (image, tile) task of :func:`_forward_tiles`: its faces' K nearest per pixel into
    the scratch lists (cnt, kz, kf, kd, kb; at least tile*tile pixels), then all its pixels
    of the outputs (-1 where fewer than K)."""
    H = ys.shape[0]
    W = xs.shape[0]
    n, r_lo, c_lo, r_hi, c_hi = tile_bounds(tid, n_ty, n_tx, tile, H, W)
    tw = c_hi - c_lo + 1
    npix = (r_hi - r_lo + 1) * tw
    cnt[:npix] = 0
    for j in range(tile_start[tid], tile_start[tid + 1]):
        f = tile_faces[j]
        x0 = np.float64(rec_v[j, 0])
        y0 = np.float64(rec_v[j, 1])
        z0 = np.float64(rec_v[j, 2])
        x1 = np.float64(rec_v[j, 3])
        y1 = np.float64(rec_v[j, 4])
        z1 = np.float64(rec_v[j, 5])
        x2 = np.float64(rec_v[j, 6])
        y2 = np.float64(rec_v[j, 7])
        z2 = np.float64(rec_v[j, 8])
        g = neighbor[f] if has_neighbors else -1
        bx0 = min(x0, x1, x2) - radius
        bx1 = max(x0, x1, x2) + radius
        by0 = min(y0, y1, y2) - radius
        by1 = max(y0, y1, y2) + radius
        area = (x2 - x0) * (y1 - y0) - (y2 - y0) * (x1 - x0) + KEPS
        l0 = (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1)  # squared edge lengths,
        l1 = (x0 - x2) * (x0 - x2) + (y0 - y2) * (y0 - y2)  # edge i opposite vertex i
        l2 = (x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)
        # A lower bound of the depth at any pixel inside the face (pz is a convex
        # combination of z0..z2 there, up to rounding; without perspective correction the
        # weights sum to (area - KEPS) / area): an inside pixel whose list is full of nearer
        # faces is skipped before its barycentrics are solved.
        zlo = -np.inf
        if g < 0 and blur <= 0.0:
            wsum = 1.0 if persp else (area - KEPS) / area
            if wsum > 0.5:
                zlo = min(z0, z1, z2) * min(wsum, 1.0) * (1.0 - 1e-9)
        if spans:
            s0, m0 = _edge_line(x1, y1, x2, y2, area)
            s1, m1 = _edge_line(x2, y2, x0, y0, area)
            s2, m2 = _edge_line(x0, y0, x1, y1, area)
        for r in range(max(rec_r[j, 0], r_lo), min(rec_r[j, 1], r_hi) + 1):
            py = np.float64(ys[r])
            if py > by1 or py < by0:
                continue
            c_a = max(rec_r[j, 2], c_lo)
            c_b = min(rec_r[j, 3], c_hi)
            if spans:
                # Only the columns of the face's span in this row (all three edge tests
                # can pass), one column of margin for rounding: the test below is
                # unchanged, so is the result; the box around a thin or slanted face
                # is mostly misses. (Each edge solved for x once per face, above.)
                lo, hi = _edge_bound(s0, x1, y1, m0, py, -np.inf, np.inf)
                lo, hi = _edge_bound(s1, x2, y2, m1, py, lo, hi)
                lo, hi = _edge_bound(s2, x0, y0, m2, py, lo, hi)
                c_a, c_b = _row_span(lo, hi, x_first, inv_step, c_a, c_b)
            for c in range(c_a, c_b + 1):
                px = np.float64(xs[c])
                if px > bx1 or px < bx0:
                    continue
                e0 = (px - x1) * (y2 - y1) - (py - y1) * (x2 - x1)
                e1 = (px - x2) * (y0 - y2) - (py - y2) * (x0 - x2)
                e2 = (px - x0) * (y1 - y0) - (py - y0) * (x1 - x0)
                # With all z > 0 (binning guarantees it) "inside" is the sign test of
                # the screen-space barycentrics, so most misses stop here, before any
                # division: without blur every outside pixel; with blur those farther
                # from an edge's line (on its outer side) than the blur radius, since
                # the triangle lies within that edge's inner half-plane.
                p = (r - r_lo) * tw + (c - c_lo)
                base = p * K
                if blur <= 0.0:
                    if not (e0 * area > 0.0 and e1 * area > 0.0 and e2 * area > 0.0):
                        continue
                    if cnt[p] == K and zlo >= kz[base + K - 1]:
                        continue  # behind K nearer faces: the list check below would skip it
                else:
                    lb = 0.0
                    if e0 * area < 0.0 and l0 > KEPS:
                        lb = max(lb, e0 * e0 / l0)
                    if e1 * area < 0.0 and l1 > KEPS:
                        lb = max(lb, e1 * e1 / l1)
                    if e2 * area < 0.0 and l2 > KEPS:
                        lb = max(lb, e2 * e2 / l2)
                    if lb * (1.0 - 1e-9) >= blur:  # a lower bound of the distance
                        continue
                b0, b1, b2, inside, pz = bary_depth(
                    px, py, x0, y0, z0, x1, y1, z1, x2, y2, z2, persp, clip
                )
                if pz < 0.0:
                    continue
                if not inside and blur <= 0.0:
                    continue
                if g < 0 and cnt[p] == K and not (pz < kz[base + K - 1]):
                    continue  # cannot enter the list: skip the distance
                if inside and g < 0:
                    # Inside pixels are listed whatever their distance: compute it only
                    # for the faces that survive (NaN marks it as owed).
                    sd = np.nan
                else:
                    d = tri_dist2(px, py, x0, y0, x1, y1, x2, y2)
                    if not inside and d >= blur:
                        continue
                    sd = -d if inside else d
                if g >= 0 and _neighbor_wins(fv, g, f, sd, px, py, radius, blur, rng,
                                             persp, clip):
                    # Halves of a face split by near-plane clipping: only the one with
                    # the smaller signed distance is listed, so the half containing the
                    # pixel wins (PyTorch3D compares unsigned distances, a coin toss
                    # near the shared edge, and only while the other is in the list).
                    continue
                cnt[p] = _insert(kz, kf, kd, kb, base, cnt[p], K, pz, f, sd, b0, b1, b2)
    # Outputs as flat arrays, a row of the tile at a time: the row is filled with -1 in
    # contiguous runs (vectorised stores), then the listed entries written over it.
    pf = p2f.reshape(-1)
    zf = zbuf.reshape(-1)
    df = dists.reshape(-1)
    bf = bary.reshape(-1)
    for r in range(r_lo, r_hi + 1):
        o0 = ((n * H + r) * W + c_lo) * K  # flat index of (n, r, c_lo, 0)
        for i in range(o0, o0 + tw * K):
            pf[i] = -1
        for i in range(o0, o0 + tw * K):
            zf[i] = -1.0
        for i in range(o0, o0 + tw * K):
            df[i] = -1.0
        for i in range(3 * o0, 3 * (o0 + tw * K)):
            bf[i] = -1.0
        if tile_start[tid] == tile_start[tid + 1]:
            continue  # no faces: nothing listed
        for c in range(c_lo, c_hi + 1):
            p = (r - r_lo) * tw + c - c_lo
            o = o0 + (c - c_lo) * K
            base = p * K
            for k in range(cnt[p]):
                f = kf[base + k]
                d = kd[base + k]
                if np.isnan(d):
                    d = -tri_dist2(
                        np.float64(xs[c]), np.float64(ys[r]),
                        np.float64(fv[f, 0, 0]), np.float64(fv[f, 0, 1]),
                        np.float64(fv[f, 1, 0]), np.float64(fv[f, 1, 1]),
                        np.float64(fv[f, 2, 0]), np.float64(fv[f, 2, 1]),
                    )
                pf[o + k] = f
                zf[o + k] = kz[base + k]
                df[o + k] = d
                bf[3 * (o + k)] = kb[3 * (base + k)]
                bf[3 * (o + k) + 1] = kb[3 * (base + k) + 1]
                bf[3 * (o + k) + 2] = kb[3 * (base + k) + 2]


@nb.njit(parallel=True, cache=True)
def _backward_chunks(fv, p2f, gz, gb, gd, ys, xs, persp, clip, n_chunks):
    """Per-chunk face-vertex gradients (n_chunks, F, 9): chunk ch owns a fixed band of
    image rows and adds its (pixel, k) contributions in row order, so the sum over chunks
    (taken in order afterwards) does not depend on the thread count."""
    N, H, W, K = p2f.shape
    grads = np.zeros((n_chunks, fv.shape[0], 9), np.float64)
    rows = N * H
    for ch in nb.prange(n_chunks):
        for row in range(ch * rows // n_chunks, (ch + 1) * rows // n_chunks):
            n = row // H
            r = row % H
            py = np.float64(ys[r])
            for c in range(W):
                px = np.float64(xs[c])
                for k in range(K):
                    f = p2f[n, r, c, k]
                    if f < 0:
                        continue
                    fragment_vjp(
                        px, py, fv[f],
                        np.float64(gz[n, r, c, k]),
                        np.float64(gb[n, r, c, k, 0]),
                        np.float64(gb[n, r, c, k, 1]),
                        np.float64(gb[n, r, c, k, 2]),
                        np.float64(gd[n, r, c, k]),
                        persp, clip, grads[ch, f],
                    )
    return grads


def rasterize_forward(
    face_verts: torch.Tensor,
    face_mesh: torch.Tensor,
    n_meshes: int,
    neighbor: torch.Tensor,
    params: RasterParams,
    tile: int = TILE,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Numba forward. Same contract as :func:`.reference.rasterize_reference` (no autograd).

    Args:
        face_verts: (F, 3, 3) float32/float64 CPU tensor, screen space.
        face_mesh: (F,) int64 mesh index of each face (-1 = not rasterized).
        neighbor: (F,) int64 the other half of a clipped face, or -1.

    Returns:
        pix_to_face (N, H, W, K) int64, zbuf (N, H, W, K), bary_coords (N, H, W, K, 3),
        dists (N, H, W, K), in the dtype of ``face_verts``; -1 where empty.
    """
    H, W = params.image_size
    K = params.faces_per_pixel
    blur_radius = params.blur_radius
    dtype = face_verts.dtype
    fv = to_numpy(face_verts)
    fm = to_numpy(face_mesh)
    ys, xs = pixel_centers_ndc(H, W)
    radius = float(np.sqrt(blur_radius))
    n_ty, n_tx = tile_grid(H, W, tile)
    with kernel_lock():  # (see diffrend.threads)
        rng, n_nan, counts = face_ranges_and_counts(
            fv, fm, radius, params.cull_backfaces, ys, xs, tile, n_ty, n_tx,
            n_meshes * n_ty * n_tx,
        )
        if n_nan:
            raise ValueError(f"face_verts has NaN or inf coordinates in {n_nan} faces")
        tile_start, tile_faces, rec_v, rec_r = bin_faces(fv, rng, fm, counts, tile, n_ty, n_tx)
        # Every entry is written by exactly one (image, tile) task, empty slots with -1.
        p2f, zbuf, bary, dists = empty_fragment_buffers(n_meshes, H, W, K, dtype, bary=True)
        _forward_tiles(
            fv, radius, rng, to_numpy(neighbor), tile_start, tile_faces, rec_v, rec_r, ys, xs,
            n_meshes, K, tile,
            blur_radius, params.perspective_correct, params.clip_barycentric_coords,
            p2f.numpy(), zbuf.numpy(), bary.numpy(), dists.numpy(),
        )
    return p2f, zbuf, bary, dists


def rasterize_backward(
    face_verts: torch.Tensor,
    pix_to_face: torch.Tensor,
    grad_zbuf: torch.Tensor,
    grad_bary: torch.Tensor,
    grad_dists: torch.Tensor,
    params: RasterParams,
) -> torch.Tensor:
    """Numba backward: gradient (F, 3, 3) of face_verts from the three output gradients
    (``params``: the forward's; its perspective correction and clipping). Deterministic."""
    N, H, W, K = pix_to_face.shape
    ys, xs = pixel_centers_ndc(H, W)
    n_chunks = n_row_bands(N * H, face_verts.shape[0], 9, N * H * W * K)
    with kernel_lock():
        grads = _backward_chunks(
            to_numpy(face_verts), to_numpy(pix_to_face), to_numpy(grad_zbuf),
            to_numpy(grad_bary), to_numpy(grad_dists), ys, xs,
            params.perspective_correct, params.clip_barycentric_coords, n_chunks,
        )
    return sum_row_bands(grads, face_verts.dtype).view(-1, 3, 3)

"""Numba CPU kernels of the mesh rasterizer: forward (pick K faces per pixel) and backward.

Forward: faces are binned into tiles (:mod:`.binning`); one parallel task per (mesh, tile)
walks its faces in ascending index order and, for each pixel of the face's box inside the
tile, keeps a sorted list of the K nearest faces (by depth, then face index). Backward:
a fixed number of row bands (set by the problem size, not the thread count) each add their
(pixel, k) contributions into their own gradient buffer; the buffers are summed in order
(deterministic).
Both compile once and are cached on disk (``cache=True``).
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from ..threads import kernel_lock
from .binning import bin_faces, face_box, face_pixel_ranges
from .fragments import RasterParams
from .grid import pixel_centers_ndc
from .pixel_math import KEPS, bary_depth, fragment_vjp, tri_dist2

TILE = 16


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
    x0 = np.float64(fv[g, 0, 0])
    y0 = np.float64(fv[g, 0, 1])
    x1 = np.float64(fv[g, 1, 0])
    y1 = np.float64(fv[g, 1, 1])
    x2 = np.float64(fv[g, 2, 0])
    y2 = np.float64(fv[g, 2, 1])
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
    for tid in nb.prange(n_meshes * n_ty * n_tx):
        n = tid // (n_ty * n_tx)
        rem = tid % (n_ty * n_tx)
        r_lo = (rem // n_tx) * tile
        c_lo = (rem % n_tx) * tile
        r_hi = min(r_lo + tile, H) - 1
        c_hi = min(c_lo + tile, W) - 1
        tw = c_hi - c_lo + 1
        npix = (r_hi - r_lo + 1) * tw
        cnt = np.zeros(npix, np.int64)
        kz = np.empty(npix * K, np.float64)
        kf = np.empty(npix * K, np.int64)
        kd = np.empty(npix * K, np.float64)
        kb = np.empty(npix * K * 3, np.float64)
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
            for r in range(max(rec_r[j, 0], r_lo), min(rec_r[j, 1], r_hi) + 1):
                py = np.float64(ys[r])
                if py > by1 or py < by0:
                    continue
                for c in range(max(rec_r[j, 2], c_lo), min(rec_r[j, 3], c_hi) + 1):
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
                    if blur <= 0.0:
                        if not (e0 * area > 0.0 and e1 * area > 0.0 and e2 * area > 0.0):
                            continue
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
                    p = (r - r_lo) * tw + (c - c_lo)
                    base = p * K
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
        for p in range(npix):
            r = r_lo + p // tw
            c = c_lo + p % tw
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
                p2f[n, r, c, k] = f
                zbuf[n, r, c, k] = kz[base + k]
                dists[n, r, c, k] = d
                bary[n, r, c, k, 0] = kb[(base + k) * 3]
                bary[n, r, c, k, 1] = kb[(base + k) * 3 + 1]
                bary[n, r, c, k, 2] = kb[(base + k) * 3 + 2]
            for k in range(cnt[p], K):  # outputs come uninitialised: one pass, not two
                p2f[n, r, c, k] = -1
                zbuf[n, r, c, k] = -1.0
                dists[n, r, c, k] = -1.0
                bary[n, r, c, k, 0] = -1.0
                bary[n, r, c, k, 1] = -1.0
                bary[n, r, c, k, 2] = -1.0


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


GRAD_BUFFER_BYTES = 256 * 2**20  # per-chunk gradient buffers, all chunks together


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


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
    fv = _np(face_verts)
    fm = _np(face_mesh)
    ys, xs = pixel_centers_ndc(H, W)
    radius = float(np.sqrt(blur_radius))
    with kernel_lock():  # (see diffrend.threads)
        rng, n_nan = face_pixel_ranges(fv, fm, radius, params.cull_backfaces, ys, xs)
        if n_nan:
            raise ValueError(f"face_verts has NaN or inf coordinates in {n_nan} faces")
        tile_start, tile_faces, rec_v, rec_r = bin_faces(fv, rng, fm, n_meshes, H, W, tile)
        # Every entry is written by exactly one (image, tile) task, empty slots with -1.
        p2f = torch.empty((n_meshes, H, W, K), dtype=torch.int64)
        zbuf = torch.empty((n_meshes, H, W, K), dtype=dtype)
        bary = torch.empty((n_meshes, H, W, K, 3), dtype=dtype)
        dists = torch.empty((n_meshes, H, W, K), dtype=dtype)
        _forward_tiles(
            fv, radius, rng, _np(neighbor), tile_start, tile_faces, rec_v, rec_r, ys, xs,
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
    perspective_correct: bool,
    clip_barycentric_coords: bool,
) -> torch.Tensor:
    """Numba backward: gradient (F, 3, 3) of face_verts from the three output gradients."""
    N, H, W, K = pix_to_face.shape
    ys, xs = pixel_centers_ndc(H, W)
    F = face_verts.shape[0]
    # Chunk count from the problem size only (never the thread count): results are
    # bit-identical on any machine.
    n_chunks = int(max(1, min(16, N * H, GRAD_BUFFER_BYTES // max(1, F * 9 * 8))))
    with kernel_lock():
        grads = _backward_chunks(
            _np(face_verts), _np(pix_to_face), _np(grad_zbuf), _np(grad_bary), _np(grad_dists),
            ys, xs, bool(perspective_correct), bool(clip_barycentric_coords), n_chunks,
        )
    grad = grads.sum(axis=0) if n_chunks > 1 else grads[0]
    return torch.from_numpy(grad).to(face_verts.dtype).view(-1, 3, 3)

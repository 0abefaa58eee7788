"""Exact tile binning for the CPU kernels: count first, then fill, so nothing overflows.

Each face's bounding box (grown by the blur radius) is turned into the range of pixel rows
and columns whose centres it may touch; the face is then listed in every tile of that range.
Faces are binned in fixed chunks of the face list and concatenated in chunk order, so each
tile lists its faces in ascending index order whatever the thread count: the rasterizer's
results do not depend on tiling or threads.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ..threads import kernel_lock
from .pixel_math import KEPS, face_area

N_CHUNKS = 16  # fixed, so the fill order (and hence results) never depends on thread count


@nb.njit(cache=True, inline="always")
def _index_range(lo, hi, first, step, size):
    """Indices i in [0, size) whose centre ``first - i * step`` may lie in [lo, hi].

    Conservative by 1e-3 of a pixel on each side (rounding of the centres); the rasterizer
    repeats PyTorch3D's exact bounding-box test per pixel. Returns (i0, i1) inclusive, with
    i0 > i1 when empty.
    """
    a = (first - hi) / step
    b = (first - lo) / step
    if not (a < size + 1.0) or not (b > -2.0):  # also catches NaN
        return 1, 0
    i0 = max(int(math.ceil(a - 1e-3)), 0)
    i1 = min(int(math.floor(b + 1e-3)), size - 1)
    return i0, i1


@nb.njit(cache=True, inline="always")
def face_box(fv, f, radius):
    """(xmin, xmax, ymin, ymax) of face f's screen bounding box grown by ``radius``."""
    x0 = np.float64(fv[f, 0, 0])
    x1 = np.float64(fv[f, 1, 0])
    x2 = np.float64(fv[f, 2, 0])
    y0 = np.float64(fv[f, 0, 1])
    y1 = np.float64(fv[f, 1, 1])
    y2 = np.float64(fv[f, 2, 1])
    return (
        min(x0, x1, x2) - radius,
        max(x0, x1, x2) + radius,
        min(y0, y1, y2) - radius,
        max(y0, y1, y2) + radius,
    )


@nb.njit(parallel=True, cache=True)
def face_pixel_ranges(fv, face_mesh, radius, cull_backfaces, ys, xs):
    """Per-face pixel range, or an empty range for faces that are never rasterized.

    Args:
        fv: (F, 3, 3) screen-space face vertices (x, y NDC; z view depth).
        face_mesh: (F,) mesh index of each face (-1 = skip).
        radius: sqrt(blur_radius), how far outside its bbox a face can reach.
        ys, xs: (H,), (W,) pixel-centre NDC coordinates.

    Returns:
        rng: (F, 4) int32 [row0, row1, col0, col1] inclusive; row0 > row1 if the face is
            skipped (zero area, a vertex at or behind the camera, culled back face, off image).
        n_nan: how many faces have a NaN or inf coordinate.
    """
    F = fv.shape[0]
    H = ys.shape[0]
    W = xs.shape[0]
    rng = np.empty((F, 4), np.int32)
    ystep = (np.float64(ys[0]) - np.float64(ys[H - 1])) / max(H - 1, 1) if H > 1 else 1.0
    xstep = (np.float64(xs[0]) - np.float64(xs[W - 1])) / max(W - 1, 1) if W > 1 else 1.0
    n_nan = 0
    for f in nb.prange(F):
        rng[f, 0] = 1
        rng[f, 1] = 0
        rng[f, 2] = 1
        rng[f, 3] = 0
        bad = False
        for i in range(3):
            for j in range(3):
                if not np.isfinite(fv[f, i, j]):
                    bad = True
        if bad:
            n_nan += 1
            continue
        zmin = min(fv[f, 0, 2], fv[f, 1, 2], fv[f, 2, 2])
        area = face_area(
            np.float64(fv[f, 0, 0]), np.float64(fv[f, 0, 1]),
            np.float64(fv[f, 1, 0]), np.float64(fv[f, 1, 1]),
            np.float64(fv[f, 2, 0]), np.float64(fv[f, 2, 1]),
        )
        if (
            face_mesh[f] < 0
            or not (zmin >= KEPS)
            or not (abs(area) > KEPS)
            or (cull_backfaces and area < 0.0)
        ):
            continue
        xmin, xmax, ymin, ymax = face_box(fv, f, radius)
        r0, r1 = _index_range(ymin, ymax, np.float64(ys[0]), ystep, H)
        c0, c1 = _index_range(xmin, xmax, np.float64(xs[0]), xstep, W)
        if r0 <= r1 and c0 <= c1:
            rng[f, 0] = r0
            rng[f, 1] = r1
            rng[f, 2] = c0
            rng[f, 3] = c1
    return rng, n_nan


@nb.njit(parallel=True, cache=True)
def _count(rng, face_mesh, tile, n_ty, n_tx, n_tiles):
    F = rng.shape[0]
    counts = np.zeros((N_CHUNKS, n_tiles), np.int64)
    for ch in nb.prange(N_CHUNKS):
        f0 = ch * F // N_CHUNKS
        f1 = (ch + 1) * F // N_CHUNKS
        for f in range(f0, f1):
            if rng[f, 0] > rng[f, 1]:
                continue
            base = face_mesh[f] * n_ty * n_tx
            for ty in range(rng[f, 0] // tile, rng[f, 1] // tile + 1):
                for tx in range(rng[f, 2] // tile, rng[f, 3] // tile + 1):
                    counts[ch, base + ty * n_tx + tx] += 1
    return counts


@nb.njit(parallel=True, cache=True)
def _fill(fv, rng, face_mesh, tile, n_ty, n_tx, cursor, out, rec_v, rec_r):
    F = rng.shape[0]
    for ch in nb.prange(N_CHUNKS):
        f0 = ch * F // N_CHUNKS
        f1 = (ch + 1) * F // N_CHUNKS
        for f in range(f0, f1):
            if rng[f, 0] > rng[f, 1]:
                continue
            base = face_mesh[f] * n_ty * n_tx
            for ty in range(rng[f, 0] // tile, rng[f, 1] // tile + 1):
                for tx in range(rng[f, 2] // tile, rng[f, 3] // tile + 1):
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


@nb.njit(cache=True)
def _offsets(counts):
    n_chunks, n_tiles = counts.shape
    start = np.zeros(n_tiles + 1, np.int64)
    cursor = np.empty((n_chunks, n_tiles), np.int64)
    acc = 0
    for t in range(n_tiles):
        start[t] = acc
        for ch in range(n_chunks):
            cursor[ch, t] = acc
            acc += counts[ch, t]
    start[n_tiles] = acc
    return start, cursor


def bin_faces(
    fv: np.ndarray,
    rng: np.ndarray,
    face_mesh: np.ndarray,
    n_meshes: int,
    height: int,
    width: int,
    tile: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """List, for each (mesh, tile), the faces whose pixel range touches it.

    Args:
        fv: (F, 3, 3) face vertices. rng: (F, 4) int32 pixel ranges from
            :func:`face_pixel_ranges`. face_mesh: (F,) int64 mesh index of each face.
        n_meshes: N. height, width: image size. tile: tile side in pixels.

    Returns:
        tile_start: (N * TY * TX + 1,) int64 offsets into the entries.
        tile_faces: (total,) int64 face index of each entry, ascending within each tile.
        rec_v: (total, 9) the entry's face vertices. rec_r: (total, 4) its pixel range.
    """
    n_ty = -(-height // tile)
    n_tx = -(-width // tile)
    n_tiles = n_meshes * n_ty * n_tx
    with kernel_lock():  # (see diffrend.threads)
        counts = _count(rng, face_mesh, tile, n_ty, n_tx, n_tiles)
        start, cursor = _offsets(counts)
        total = int(start[-1])
        out = np.empty(total, np.int64)
        rec_v = np.empty((total, 9), fv.dtype)
        rec_r = np.empty((total, 4), np.int32)
        _fill(fv, rng, face_mesh, tile, n_ty, n_tx, cursor, out, rec_v, rec_r)
    return start, out, rec_v, rec_r

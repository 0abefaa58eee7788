"""What the Numba kernels of both rasterizers share: exact tile binning, row bands of the
backward, host-side conversions.

Binning counts first, then fills, so nothing overflows. Each primitive's box (a face's grown
by the blur radius, a point's disc) is turned into the range of pixel rows and columns whose
centres it may touch (:func:`index_range`); the primitive is then listed in every tile of
that range. Primitives are binned in fixed chunks of their list and concatenated in chunk
order, so each tile lists them in ascending index order whatever the thread count: results
do not depend on tiling or threads. :mod:`.mesh.numba` and :mod:`.points.numba` hold the
per-primitive range and fill passes (what they store per entry differs).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import torch

from ..threads import kernel_lock
from .tiles import tile_grid

N_CHUNKS = 16  # fixed, so the fill order (and hence results) never depends on thread count
GRAD_BUFFER_BYTES = 256 * 2**20  # the backward's per-band gradient buffers, all together


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A contiguous NumPy view (or copy) of a CPU tensor, detached."""
    return t.detach().contiguous().numpy()


@nb.njit(cache=True, inline="always")
def index_range(lo, hi, first, step, size):
    """Indices i in [0, size) whose centre ``first - i * step`` may lie in [lo, hi].

    Conservative by 1e-3 of a pixel on each side (rounding of the centres); the rasterizers
    repeat PyTorch3D's exact test per pixel. Returns (i0, i1) inclusive, with i0 > i1 when
    empty.
    """
    a = (first - hi) / step
    b = (first - lo) / step
    if not (a < size + 1.0) or not (b > -2.0):  # also catches NaN
        return 1, 0
    i0 = max(int(math.ceil(a - 1e-3)), 0)
    i1 = min(int(math.floor(b + 1e-3)), size - 1)
    return i0, i1


@nb.njit(cache=True, inline="always")
def pixel_steps(ys, xs):
    """(ystep, xstep): the NDC distance between neighbouring pixel rows and columns (1 for
    a single row or column), in float64."""
    H = ys.shape[0]
    W = xs.shape[0]
    ystep = (np.float64(ys[0]) - np.float64(ys[H - 1])) / max(H - 1, 1) if H > 1 else 1.0
    xstep = (np.float64(xs[0]) - np.float64(xs[W - 1])) / max(W - 1, 1) if W > 1 else 1.0
    return ystep, xstep


@nb.njit(cache=True, inline="always")
def tile_bounds(tid, n_ty, n_tx, tile, H, W):
    """The forward's task ``tid`` = (image, tile): (image n, first row, first column, last
    row, last column), the last ones inclusive and clipped to the image."""
    n = tid // (n_ty * n_tx)
    rem = tid % (n_ty * n_tx)
    r_lo = (rem // n_tx) * tile
    c_lo = (rem % n_tx) * tile
    return n, r_lo, c_lo, min(r_lo + tile, H) - 1, min(c_lo + tile, W) - 1


@nb.njit(cache=True, inline="always")
def set_empty(rng, i):
    """Marks item i's pixel range (rng[i] = [row0, row1, col0, col1]) as empty."""
    rng[i, 0] = 1
    rng[i, 1] = 0
    rng[i, 2] = 1
    rng[i, 3] = 0


@nb.njit(cache=True, inline="always")
def tile_shift(tile):
    """log2(tile) when the tile side is a power of two, else -1 (see :func:`tile_span`)."""
    sh = 0
    while (1 << sh) < tile:
        sh += 1
    return sh if (1 << sh) == tile else -1


@nb.njit(cache=True, inline="always")
def _tile_of(i, tile, shift):
    """The tile row or column of pixel row or column i: a shift for the usual power-of-two
    tiles (``shift`` from :func:`tile_shift`), measured ~3x faster than the division in the
    binning passes."""
    return i >> shift if shift >= 0 else i // tile


@nb.njit(cache=True, inline="always")
def tile_span(rng, i, tile, shift):
    """(ty0, ty1, tx0, tx1), inclusive: the tiles of item i's (non-empty) pixel range."""
    return (_tile_of(rng[i, 0], tile, shift), _tile_of(rng[i, 1], tile, shift),
            _tile_of(rng[i, 2], tile, shift), _tile_of(rng[i, 3], tile, shift))


@nb.njit(cache=True, inline="always")
def count_tiles(rng, i, owner, tile, shift, n_ty, n_tx, counts_row):
    """Adds one to ``counts_row`` for every tile of item i's pixel range (non-empty)."""
    base = owner[i] * n_ty * n_tx
    ty0, ty1, tx0, tx1 = tile_span(rng, i, tile, shift)
    for ty in range(ty0, ty1 + 1):
        for tx in range(tx0, tx1 + 1):
            counts_row[base + ty * n_tx + tx] += 1


@nb.njit(parallel=True, cache=True)
def _count(rng, owner, tile, n_ty, n_tx, n_tiles):
    """Entries per (chunk, tile): each item counts every tile of its pixel range."""
    n_items = rng.shape[0]
    counts = np.zeros((N_CHUNKS, n_tiles), np.int64)
    shift = tile_shift(tile)
    for ch in nb.prange(N_CHUNKS):
        for i in range(ch * n_items // N_CHUNKS, (ch + 1) * n_items // N_CHUNKS):
            if rng[i, 0] <= rng[i, 1]:
                count_tiles(rng, i, owner, tile, shift, n_ty, n_tx, counts[ch])
    return counts


@nb.njit(cache=True)
def offsets(counts):
    """From the entries per (chunk, tile) (n_chunks, n_tiles): each tile's first entry
    (n_tiles + 1,), the last the total, and each chunk's first entry in each tile
    (n_chunks, n_tiles). Rows at a time (contiguous), not tile by tile down the chunks."""
    n_chunks, n_tiles = counts.shape
    per_tile = np.zeros(n_tiles, np.int64)
    for ch in range(n_chunks):
        per_tile += counts[ch]
    start = np.empty(n_tiles + 1, np.int64)
    start[0] = 0
    start[1:] = np.cumsum(per_tile)
    cursor = np.empty((n_chunks, n_tiles), np.int64)
    cursor[0] = start[:-1]
    for ch in range(1, n_chunks):
        cursor[ch] = cursor[ch - 1] + counts[ch - 1]
    return start, cursor


def count_entries(rng: np.ndarray, owner: np.ndarray, n_images: int, height: int, width: int,
                  tile: int) -> tuple[np.ndarray, np.ndarray]:
    """The first binning pass, for faces or points: where each tile's entries start, and
    where each (fill chunk, tile) writes its first entry.

    Args:
        rng: (I, 4) int32 pixel range of each item (empty: row0 > row1).
        owner: (I,) int64 image of each item (items with an empty range are not read).
        n_images: N. height, width: image size. tile: tile side in pixels.

    Returns:
        tile_start: (N * TY * TX + 1,) int64 offsets into the entries (the last = total).
        cursor: (N_CHUNKS, N * TY * TX) int64 write position of each chunk in each tile.
    """
    n_ty, n_tx = tile_grid(height, width, tile)
    with kernel_lock():  # (see diffrend.threads)
        counts = _count(rng, owner, tile, n_ty, n_tx, n_images * n_ty * n_tx)
        return offsets(counts)


def n_row_bands(n_rows: int, n_items: int, width: int, n_entries: int) -> int:
    """How many row bands the backward splits N * H image rows into, each adding into its
    own (n_items, width) float64 buffer. From the problem size only (never the thread
    count): results are bit-identical on any machine.

    At most 16 bands, and no more than the ``n_entries`` (pixel, k) slots that feed them
    fill: ``n_entries // n_items`` bands, so the buffers, zeroed and summed on every call,
    never outweigh the pixels (5 views of 128^2 over 30,000 faces: 2 bands, not 16, whose
    35 MB cost 11 ms of a 15 ms backward).
    """
    return int(max(1, min(16, n_rows, n_entries // max(1, n_items),
                          GRAD_BUFFER_BYTES // max(1, n_items * width * 8))))


def sum_row_bands(grads: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """The (n_items, width) gradient from the bands' buffers (n_bands, n_items, width),
    summed in band order (deterministic), in ``dtype``."""
    grad = grads.sum(axis=0) if grads.shape[0] > 1 else grads[0]
    return torch.from_numpy(grad).to(dtype)

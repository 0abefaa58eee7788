"""The @triton.jit code both Triton rasterizers (meshes and points) share: the binning's
tile range and entries kernel, and the per-pixel sorted K-best lists.

Binning (host side: :mod:`.triton_shared`): each primitive's setup kernel computes its
pixel range with :func:`tile_range`; :func:`tile_entries_kernel` then writes each item's
(tile, item) entries at its offset, knowing items only by their image and tile range.

K-best lists: held as S <= 8 slots, each a one-dimensional register tensor with one value
per pixel.

A slot is a (depth, index) pair; slots are kept sorted ascending by depth, then index; an
empty slot is (+inf, a large index), which sorts after every real entry. A new entry goes
in by a chain of compare-and-swap steps written with ``tl.where`` (one step of insertion
sort per slot), so all the work is elementwise per pixel: there is no reduction along the
list and no two-dimensional (pixel, slot) tensor. Lists longer than S are built in rounds
by the kernels (each round keeps the S best entries after the previous round's last).

Why this shape: the mesh kernel's first list was a two-dimensional (pixels, K) tensor
where a new face replaced the worst entry found by cross-lane reductions along K
(``tl.max(kz, axis=1)`` and friends) and the list was ranked by a loop of such
reductions. Compiled by triton 3.6 on an H100 it dropped faces from some pixels' lists
for particular (tile size, num_warps) pairs, while Triton's interpreter and other pairs
agreed with the reference; the cause was not found. The points kernel, written in this
slot style from the start, matched the reference exactly on its first compiled run.

Variables are passed as (z0, i0, ..., z7, i7) whatever S is; slots >= S are untouched.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def swap(cz, ci, sz, si):
    """One compare-and-swap step of the insertion: the carried (cz, ci) takes the slot
    (sz, si) when it sorts first by (depth, index); returns (slot z, slot i, carry z,
    carry i)."""
    s = (cz < sz) | ((cz == sz) & (ci < si))
    return (tl.where(s, cz, sz), tl.where(s, ci, si), tl.where(s, sz, cz),
            tl.where(s, si, ci))


@triton.jit
def insert(cz, ci, z0, i0, z1, i1, z2, i2, z3, i3, z4, i4, z5, i5, z6, i6, z7, i7,
           S: tl.constexpr):
    """Insert (cz, ci) into the sorted slots 0..S-1 (elementwise per pixel); what falls
    off the end is discarded. Slots >= S are passed through untouched."""
    z0, i0, cz, ci = swap(cz, ci, z0, i0)
    if S > 1:
        z1, i1, cz, ci = swap(cz, ci, z1, i1)
    if S > 2:
        z2, i2, cz, ci = swap(cz, ci, z2, i2)
    if S > 3:
        z3, i3, cz, ci = swap(cz, ci, z3, i3)
    if S > 4:
        z4, i4, cz, ci = swap(cz, ci, z4, i4)
    if S > 5:
        z5, i5, cz, ci = swap(cz, ci, z5, i5)
    if S > 6:
        z6, i6, cz, ci = swap(cz, ci, z6, i6)
    if S > 7:
        z7, i7, cz, ci = swap(cz, ci, z7, i7)
    return z0, i0, z1, i1, z2, i2, z3, i3, z4, i4, z5, i5, z6, i6, z7, i7


@triton.jit
def last(z0, i0, z1, i1, z2, i2, z3, i3, z4, i4, z5, i5, z6, i6, z7, i7, S: tl.constexpr):
    """(z, i) of slot S - 1, the worst listed (or the empty marker)."""
    zl = z0
    il = i0
    if S == 2:
        zl = z1
        il = i1
    if S == 3:
        zl = z2
        il = i2
    if S == 4:
        zl = z3
        il = i3
    if S == 5:
        zl = z4
        il = i4
    if S == 6:
        zl = z5
        il = i5
    if S == 7:
        zl = z6
        il = i6
    if S == 8:
        zl = z7
        il = i7
    return zl, il


@triton.jit
def tile_block(pid, ys_ptr, xs_ptr, H, W, n_ty, n_tx, T: tl.constexpr, BLOCK: tl.constexpr):
    """The pixels of a forward program's tile: program ``pid`` = (image n, tile) holds
    BLOCK >= T * T lanes, lane i < T * T the tile's pixel (i // T, i % T). Returns (lanes
    (BLOCK,), whether each lane is a pixel of the image, its centre x and y, its flat
    (n, row, column) index)."""
    n = pid // (n_ty * n_tx)
    rem = pid % (n_ty * n_tx)
    offs = tl.arange(0, BLOCK)
    r = (rem // n_tx) * T + offs // T
    c = (rem % n_tx) * T + offs % T
    pvalid = (offs < T * T) & (r < H) & (c < W)
    py = tl.load(ys_ptr + r, mask=r < H, other=0.0)
    px = tl.load(xs_ptr + c, mask=c < W, other=0.0)
    pix = (n * H + r.to(tl.int64)) * W + c
    return offs, pvalid, px, py, pix


# ---- binning


@triton.jit
def tile_range(ok, xlo, xhi, ylo, yhi, H, W, yfirst, ystep, xfirst, xstep,
               TILE: tl.constexpr):
    """The pixel range of items whose boxes are [xlo, xhi] x [ylo, yhi] (float64), as the
    Numba binning's ``index_range`` computes it (conservative by 1e-3 pixel; the forward
    repeats the exact test): (ok, first row r0, first column c0, tiles per row, tiles).
    ``ok`` comes in as whether each item is listed at all and goes out False for items
    off the image."""
    ra = (yfirst - yhi) / ystep
    rb = (yfirst - ylo) / ystep
    ca = (xfirst - xhi) / xstep
    cb = (xfirst - xlo) / xstep
    ok = ok & (ra < H + 1.0) & (rb > -2.0) & (ca < W + 1.0) & (cb > -2.0)
    r0 = tl.minimum(tl.maximum(tl.ceil(tl.where(ok, ra, 0.0) - 1e-3), 0.0), H).to(tl.int32)
    r1 = tl.minimum(tl.floor(tl.where(ok, rb, 0.0) + 1e-3), H - 1.0).to(tl.int32)
    c0 = tl.minimum(tl.maximum(tl.ceil(tl.where(ok, ca, 0.0) - 1e-3), 0.0), W).to(tl.int32)
    c1 = tl.minimum(tl.floor(tl.where(ok, cb, 0.0) + 1e-3), W - 1.0).to(tl.int32)
    ok = ok & (r0 <= r1) & (c0 <= c1)
    # (r1, c1 >= -1 here, so // rounds toward zero and floor alike on non-negative values)
    nty = (tl.maximum(r1, 0) // TILE) - r0 // TILE + 1
    ntx = (tl.maximum(c1, 0) // TILE) - c0 // TILE + 1
    return ok, r0, c0, ntx, tl.where(ok, nty * ntx, 0)


@triton.jit
def tile_entries_kernel(
    fm_ptr, count_ptr, first_ptr, r0_ptr, c0_ptr, ntx_ptr,  # (F,) per item (face or point)
    key_ptr, face_ptr,  # (total,) int32 outputs: tile id, item index
    F, n_ty, n_tx, TILE: tl.constexpr, BLOCK: tl.constexpr,
):
    """Writes each item's (tile, item) entries at its offset ``first`` (items in order); an
    item is a face or a point, known here only by its image and tile range."""
    f = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    fm_ok = f < F
    cnt = tl.load(count_ptr + f, mask=fm_ok, other=0)
    first = tl.load(first_ptr + f, mask=fm_ok, other=0)
    mesh = tl.load(fm_ptr + f, mask=fm_ok, other=0).to(tl.int32)
    ty0 = tl.load(r0_ptr + f, mask=fm_ok, other=0) // TILE
    tx0 = tl.load(c0_ptr + f, mask=fm_ok, other=0) // TILE
    w = tl.maximum(tl.load(ntx_ptr + f, mask=fm_ok, other=1), 1)
    base = mesh * (n_ty * n_tx) + ty0 * n_tx + tx0
    for j in range(0, tl.max(cnt, axis=0)):
        m = j < cnt
        tl.store(key_ptr + first + j, base + (j // w) * n_tx + j % w, mask=m)
        tl.store(face_ptr + first + j, f, mask=m)

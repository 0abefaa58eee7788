"""Per-pixel sorted K-best lists for the Triton rasterizers (meshes and points), held as
S <= 8 slots, each a one-dimensional register tensor with one value per pixel.

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

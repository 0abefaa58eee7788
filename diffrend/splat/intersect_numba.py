"""Numba CPU kernel of the tile intersection: a counting sort by (camera, tile) of the
Gaussians taken in depth order, so each tile's list comes out sorted with no per-tile sort.

Exact like the torch path of :func:`.intersect.isect_tiles` (whose keys and order it
reproduces to the bit): every tile gets a list exactly as long as the number of Gaussians
whose tile rectangle covers it. The Gaussians are visited in the order of one stable sort
of their 32-bit depth keys, so within a tile the entries are ordered by depth key, ties by
index, as the torch path's stable sort of the full keys orders them.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import torch

from ..threads import kernel_lock  # (sets Numba's threading layer before any launch)


@nb.njit(cache=True, fastmath=False)
def isect_kernel(lo, hi, depth_keys, order, n, n_tiles, tile_width, tile_shift, cam_shift):
    """Lists every (camera, tile, Gaussian) intersection, sorted by camera, tile, depth.

    Args:
        order: (G,) int64 permutation of the G = C * N Gaussians sorting their depth keys
            stably; the other inputs are in this order:
        lo, hi: (G, 2) int64 half-open tile rectangles (hi == lo: none).
        depth_keys: (G,) int64 32-bit depth sort keys (sorted).
        n: N (Gaussians per camera); n_tiles: tiles per camera; tile_width: TW.
        tile_shift: bits below the tile index in a key (32); cam_shift: bits below the camera.

    Returns:
        keys: (M,) int64 sorted keys; ids: (M,) int64 Gaussian (c * N + n) of each.
    """
    G = lo.shape[0]
    C = G // n if n > 0 else 0
    n_slots = C * n_tiles
    starts = np.zeros(n_slots + 1, np.int64)
    for i in range(G):  # counts per (camera, tile)
        base = (order[i] // n) * n_tiles
        for ty in range(lo[i, 1], hi[i, 1]):
            for tx in range(lo[i, 0], hi[i, 0]):
                starts[base + ty * tile_width + tx + 1] += 1
    for s in range(n_slots):  # prefix sum: where each list starts
        starts[s + 1] += starts[s]
    M = starts[n_slots]
    ids = np.empty(M, np.int64)
    keys = np.empty(M, np.int64)
    for i in range(G):  # fill, front to back (the inputs come in this order: no gathers)
        g = order[i]
        cam = g // n
        base = cam * n_tiles
        for ty in range(lo[i, 1], hi[i, 1]):
            for tx in range(lo[i, 0], hi[i, 0]):
                t = ty * tile_width + tx
                j = starts[base + t]
                starts[base + t] = j + 1
                ids[j] = g
                keys[j] = (cam << cam_shift) | (t << tile_shift) | depth_keys[i]
    return keys, ids


def isect_numba(lo: torch.Tensor, hi: torch.Tensor, depth_keys: torch.Tensor, n: int,
                tile_width: int, tile_height: int, tile_bits: int, depth_bits: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run :func:`isect_kernel` on CPU tensors.

    Args:
        lo, hi: (C, N, 2) int64 tile rectangles; depth_keys: (C, N) int64; n: N.
        tile_width, tile_height: the grid; tile_bits, depth_bits: the key layout.

    Returns:
        isect_ids (M,) int64 sorted keys and flatten_ids (M,) int64, as the torch path.
    """
    sorted_keys, order = torch.sort(depth_keys.reshape(-1), stable=True)
    # (gathered here, in parallel and in order, rather than at random inside the kernel)
    lo_s = lo.reshape(-1, 2).index_select(0, order)
    hi_s = hi.reshape(-1, 2).index_select(0, order)
    with kernel_lock():  # (see diffrend.threads)
        keys, ids = isect_kernel(
            lo_s.numpy(), hi_s.numpy(), sorted_keys.contiguous().numpy(), order.numpy(), n,
            tile_width * tile_height, tile_width, depth_bits, tile_bits + depth_bits,
        )
    return torch.from_numpy(keys), torch.from_numpy(ids)

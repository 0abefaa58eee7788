"""Which Gaussians touch which image tiles, sorted for front-to-back compositing.

Every (camera, Gaussian, tile) intersection gets a 64-bit key: the camera in the high bits,
then the tile (row-major, ty * tile_width + tx), then 32 bits that sort like the float32
depth (its bit pattern with the sign bit set for positive depths, all bits flipped for
negative ones), so one stable sort of the keys orders the list by camera, tile, then depth
(ties keep the Gaussians' order). The counts are exact: nothing is capped or dropped.
"""

from __future__ import annotations

import torch

from diffrend.raster.backends import resolve_backend

DEPTH_BITS = 32


def _bits(count: int) -> int:
    """Bits needed for the values 0 .. count - 1."""
    return max(int(count - 1).bit_length(), 0)


def _depth_keys(depths: torch.Tensor) -> torch.Tensor:
    """32-bit keys (in int64) that sort like the float32 depths, negative ones included.

    Positive floats sort like their bit patterns; setting the sign bit puts them above the
    negative ones, whose bits are flipped so that the most negative sorts first.
    """
    bits = depths.detach().to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
    bits = bits & 0xFFFFFFFF
    negative = bits >= 0x80000000
    return torch.where(negative, bits ^ 0xFFFFFFFF, bits | 0x80000000)


def tile_ranges(
    means2d: torch.Tensor, radii: torch.Tensor, tile_size: int, tile_width: int, tile_height: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The half-open tile rectangle of each Gaussian's bounding box means2d +- radii.

    Args:
        means2d: (C, N, 2) centres in pixels.
        radii: (C, N, 2) int half extents; a Gaussian with a zero radius touches no tile.
        tile_size: tile side in pixels; tile_width, tile_height: the tile grid.

    Returns:
        lo: (C, N, 2) int64 first tile (x, y); hi: (C, N, 2) int64 one past the last tile,
        both clamped to the grid (hi == lo where the Gaussian touches nothing). Not
        differentiable.
    """
    m = means2d.detach().to(torch.float64) / tile_size
    r = radii.to(torch.float64) / tile_size
    grid = torch.tensor([tile_width, tile_height], device=m.device, dtype=torch.float64)
    lo = torch.minimum(torch.floor(m - r).clamp_min(0), grid)
    hi = torch.minimum(torch.ceil(m + r).clamp_min(0), grid)
    visible = (radii > 0).all(dim=-1, keepdim=True)
    hi = torch.where(visible & (hi > lo), hi, lo)
    return lo.to(torch.int64), hi.to(torch.int64)


def isect_tiles(
    means2d: torch.Tensor,
    radii: torch.Tensor,
    depths: torch.Tensor,
    tile_size: int,
    tile_width: int,
    tile_height: int,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lists every (camera, tile, Gaussian) intersection, sorted by camera, tile, depth.

    Args:
        means2d: (C, N, 2) projected centres in pixels.
        radii: (C, N, 2) int half extents in pixels (0 = culled).
        depths: (C, N) camera depths (positive for visible Gaussians).
        tile_size: tile side in pixels.
        tile_width, tile_height: the number of tiles across and down.
        backend: "auto" (a Numba counting sort for CPU tensors, else torch), "numba" or
            "reference" (the torch path, a single sort of all keys; also for "triton"); both
            give the same lists.

    Returns:
        tiles_per_gauss: (C, N) int32 number of tiles each Gaussian touches.
        isect_ids: (M,) int64 sorted keys camera << (T + 32) | tile << 32 | depth key,
            with T the bits of the tile index.
        flatten_ids: (M,) int64 Gaussian of each intersection as c * N + n.
        None of them is differentiable.

    Raises:
        ValueError: malformed shapes, a grid and camera count too large for 64-bit keys, or
            an unknown backend (or "numba" for non-CPU tensors).
    """
    if means2d.dim() != 3 or means2d.shape[-1] != 2:
        raise ValueError(f"means2d must have shape (C, N, 2), got {tuple(means2d.shape)}")
    c, n = means2d.shape[:2]
    if radii.shape != (c, n, 2):
        raise ValueError(f"radii must have shape ({c}, {n}, 2), got {tuple(radii.shape)}")
    if depths.shape != (c, n):
        raise ValueError(f"depths must have shape ({c}, {n}), got {tuple(depths.shape)}")
    for name, v in (("tile_size", tile_size), ("tile_width", tile_width),
                    ("tile_height", tile_height)):  # fmt: skip
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    tile_bits = _bits(tile_width * tile_height)
    if _bits(c) + tile_bits + DEPTH_BITS > 63:
        raise ValueError(
            f"{c} cameras of {tile_width} x {tile_height} tiles do not fit 64-bit sort keys"
        )
    device = means2d.device

    lo, hi = tile_ranges(means2d, radii, tile_size, tile_width, tile_height)
    span = hi - lo  # (C, N, 2)
    counts = (span[..., 0] * span[..., 1]).reshape(-1)  # (C*N,)
    if backend == "triton" or (backend == "auto" and device.type != "cpu"):
        chosen = "reference"  # (the torch path runs on any device)
    else:
        chosen = resolve_backend(backend, device)
    if chosen == "numba":
        from .intersect_numba import isect_numba

        isect_ids, flatten_ids = isect_numba(lo, hi, _depth_keys(depths), n, tile_width,
                                             tile_height, tile_bits, DEPTH_BITS)
        return counts.reshape(c, n).to(torch.int32), isect_ids, flatten_ids
    owner = torch.repeat_interleave(torch.arange(c * n, device=device), counts)  # (M,)
    first = torch.cumsum(counts, 0) - counts  # exclusive prefix sum
    local = torch.arange(owner.numel(), device=device) - first[owner]
    w = span[..., 0].reshape(-1)[owner]
    tx = lo[..., 0].reshape(-1)[owner] + local % w.clamp_min(1)
    ty = lo[..., 1].reshape(-1)[owner] + local // w.clamp_min(1)

    cam = owner // max(n, 1)
    tile = ty * tile_width + tx
    depth_bits = _depth_keys(depths).reshape(-1)[owner]
    keys = (cam << (tile_bits + DEPTH_BITS)) | (tile << DEPTH_BITS) | depth_bits
    isect_ids, order = torch.sort(keys, stable=True)
    flatten_ids = owner[order]
    return counts.reshape(c, n).to(torch.int32), isect_ids, flatten_ids


def isect_offset_encode(
    isect_ids: torch.Tensor, n_cameras: int, tile_width: int, tile_height: int
) -> torch.Tensor:
    """Where each tile's run starts in the sorted intersection list.

    Args:
        isect_ids: (M,) int64 sorted keys from :func:`isect_tiles`.
        n_cameras: C; tile_width, tile_height: the tile grid.

    Returns:
        (C, tile_height, tile_width) int64 index of each tile's first intersection; a tile's
        run ends where the next tile's starts (the last one at M), so an empty tile starts
        where the next one does. Not differentiable.
    """
    tile_bits = _bits(tile_width * tile_height)
    n_tiles = tile_width * tile_height
    cam = isect_ids >> (tile_bits + DEPTH_BITS)
    tile = (isect_ids >> DEPTH_BITS) & ((1 << tile_bits) - 1)
    flat = cam * n_tiles + tile  # sorted, as the keys are
    queries = torch.arange(n_cameras * n_tiles, device=isect_ids.device, dtype=torch.int64)
    offsets = torch.searchsorted(flat.contiguous(), queries)
    return offsets.reshape(n_cameras, tile_height, tile_width)

"""The pixel grid and its tiles, shared by the mesh and point rasterizers (every backend).

Pixel centres: PyTorch3D's convention: row 0 is the top of the image (+Y up), column 0 is its
left (+X points left), and the shorter image side spans [-1, 1]. The values are computed in
float32 exactly as PyTorch3D's kernels compute them, so that pixel centres agree bit for bit.

The kernels bin primitives into T x T pixel tiles (:func:`tile_grid`; :mod:`.numba_shared`,
:mod:`.triton_shared`). The references walk the image in square pixel tiles too
(:func:`pixel_tiles`), merging each tile's candidates into its K-best lists (:func:`write_k_best`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import torch


def _axis_centers(size: int, other: int) -> np.ndarray:
    """NDC centre of each pixel along one axis, index 0 first: (size,) float32."""
    f = np.float32
    rng = f(2.0)
    if size > other:
        rng = f(size) * rng / f(other)
    offset = rng / f(2.0)
    idx = (size - 1 - np.arange(size)).astype(np.float32)  # image index 0 is +NDC
    return (-offset + (rng * idx + offset) / f(size)).astype(np.float32)


def pixel_centers_ndc(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """NDC centres of the pixel rows and columns.

    Returns:
        ys: (H,) float32, the y of each row (row 0 is the top, largest y).
        xs: (W,) float32, the x of each column (column 0 is the left, largest x).
    """
    return _axis_centers(height, width), _axis_centers(width, height)


def pixel_centers_torch(
    height: int, width: int, dtype: torch.dtype, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same as :func:`pixel_centers_ndc` as tensors: ys (H,), xs (W,). Not differentiable.

    The tensors are made once per (H, W, dtype, device) and shared: copying them from the
    host on every call would synchronise a CUDA stream on every forward and backward.
    Callers must not modify them in place.
    """
    return _pixel_centers_cached(height, width, dtype, torch.device(device))


@functools.lru_cache(maxsize=64)
def _pixel_centers_cached(
    height: int, width: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = pixel_centers_ndc(height, width)
    # Normal tensors even when first asked for under inference_mode, so that later calls
    # with autograd on may save them for backward.
    with torch.inference_mode(False):
        return (
            torch.from_numpy(ys).to(device=device, dtype=dtype),
            torch.from_numpy(xs).to(device=device, dtype=dtype),
        )


def ndc_extent(height: int, width: int) -> tuple[float, float]:
    """Half-extent of the image in NDC along x and y: (W/min(H,W), H/min(H,W))."""
    m = min(height, width)
    return width / m, height / m


def tile_grid(height: int, width: int, tile: int) -> tuple[int, int]:
    """Tiles per image side: (rows of tiles, columns of tiles) for T x T pixel tiles."""
    return -(-height // tile), -(-width // tile)


# ---- the references' pixel tiles (torch)


def pixel_tiles(ys: torch.Tensor, xs: torch.Tensor, tile: int) -> Iterator[tuple]:
    """The image in square tiles: ``(r0, c0, ty, tx)`` with ty (h,), tx (w,) the tile's
    row and column centres."""
    for r0 in range(0, ys.shape[0], tile):
        ty = ys[r0 : r0 + tile]
        for c0 in range(0, xs.shape[0], tile):
            yield r0, c0, ty, xs[c0 : c0 + tile]


def tile_pixels(ty: torch.Tensor, tx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """px, py: (h * w, 1) centres of a tile's pixels, row-major."""
    py, px = torch.meshgrid(ty, tx, indexing="ij")
    return px.reshape(-1, 1), py.reshape(-1, 1)


def write_k_best(out: torch.Tensor, n: int, r0: int, c0: int, ty: torch.Tensor,
                 tx: torch.Tensor, best_z: torch.Tensor, best_i: torch.Tensor) -> None:
    """Writes a tile's lists (h * w, k <= K) into ``out`` (N, H, W, K) of image n; slots
    whose depth is inf (no candidate) become -1."""
    best_i = torch.where(torch.isinf(best_z), torch.full_like(best_i, -1), best_i)
    kk = best_i.shape[1]
    out[n, r0 : r0 + ty.numel(), c0 : c0 + tx.numel(), :kk] = best_i.view(
        ty.numel(), tx.numel(), kk)

"""What the Triton backends of both rasterizers share on the host: launch constants, the
compute dtype, device binning (tile lists from per-item counts) and the backward's gradient
buffers. The shared @triton.jit code is in :mod:`.triton_shared_kernels`.

Runs on CUDA tensors, or on CPU tensors in Triton's interpreter (``TRITON_INTERPRET=1`` set
before triton is first imported; slow, for tests).
"""

from __future__ import annotations

import torch
import triton

from . import triton_shared_kernels as sk
from .tiles import pixel_centers_ndc, pixel_centers_torch

TILE = 8  # pixels per tile side (T*T = 64 pixels = the 64 threads of num_warps=2)
SLOTS = 8  # K-best slots held in registers per pixel; larger K runs in rounds of 8
BACKWARD_BLOCK = 256
SETUP_BLOCK = 256  # faces per program of the binning kernels
# Fused multiply-adds in the mesh kernels, as measured and tested on the GPU. Every launch
# names it: Triton's default flips from on (up to 3.9) to off (3.10), which would change
# rounding and speed with the Triton release. The binning kernels and the points forward
# never fuse: their comparisons must equal the reference's.
FUSE = True


def num_warps_for(tile: int) -> int:
    """Warps per forward program: one pixel per thread (T*T / 32), between 1 and 4. Below
    T = 8 a program has fewer pixels than the 32 threads of one warp; the kernel then pads
    its block with idle lanes (see :func:`.mesh.triton.rasterize_forward`) rather than let Triton
    replicate pixels across threads."""
    return max(1, min(4, tile * tile // 32))


def check_tile(tile: int | None) -> int:
    """The tile side to use (default :data:`TILE`); raises ValueError unless a power of two."""
    tile = TILE if tile is None else tile
    if tile < 1 or tile & (tile - 1):
        raise ValueError(f"tile must be a power of two, got {tile}")
    return tile


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the kernels compute in: float32 or float64 as given, else float32."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def pixel_range_args(height: int, width: int) -> tuple[float, float, float, float]:
    """(yfirst, ystep, xfirst, xstep): the first pixel centre and the step between centres
    along each axis, as float64 scalars for a setup kernel's range (the Numba binning's)."""
    ys, xs = pixel_centers_ndc(height, width)
    ystep = float(ys[0] - ys[height - 1]) / (height - 1) if height > 1 else 1.0
    xstep = float(xs[0] - xs[width - 1]) / (width - 1) if width > 1 else 1.0
    return float(ys[0]), ystep, float(xs[0]), xstep


def fill_tiles(owner: torch.Tensor, count: torch.Tensor, bad: torch.Tensor,
               r0: torch.Tensor, c0: torch.Tensor, ntx: torch.Tensor, n_ty: int, n_tx: int,
               n_tiles: int, tile: int, item: str, bad_message: str
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The (tile, item) lists from the per-item counts of a setup kernel (faces or points).

    Args:
        owner: (I,) image of each item (-1: none); count: (I,) int32 tiles each item
            touches; bad: (I,) int32 non-zero for items to report; r0, c0, ntx: (I,) int32
            first tile row/column and tiles per row of each item's box.
        n_ty, n_tx, n_tiles: tiles per image side and in all; tile: T.
        item: "face" or "point" (messages); bad_message: ValueError text, ``{}`` = count.

    Returns:
        ``(tile_start (n_tiles + 1,) int64, tile_items (total,) int32)``, items ascending
        within each tile. The one host synchronisation reads the total and the bad count.
    """
    dev = count.device
    last = torch.cumsum(count, 0, dtype=torch.int64)
    total, n_bad = torch.stack((last[-1:].sum(), bad.sum(dtype=torch.int64))).tolist()
    if n_bad:
        raise ValueError(bad_message.format(n_bad))
    if n_tiles >= 2**31 or total >= 2**31:
        raise ValueError(f"too many tiles or (tile, {item}) entries ({n_tiles}, {total})")
    key = torch.empty(total, dtype=torch.int32, device=dev)
    items = torch.empty(total, dtype=torch.int32, device=dev)
    n_items = count.shape[0]
    if total:
        # each item writes its (tile, item) entries at its offset, in item order
        sk.tile_entries_kernel[(triton.cdiv(n_items, SETUP_BLOCK),)](
            owner, count, (last - count).to(torch.int32), r0, c0, ntx, key, items,
            n_items, n_ty, n_tx, TILE=tile, BLOCK=SETUP_BLOCK, enable_fp_fusion=False,
        )
    # a stable sort by tile keeps items ascending within a tile
    key, order = torch.sort(key, stable=True)
    tile_start = torch.searchsorted(
        key, torch.arange(n_tiles + 1, dtype=torch.int32, device=dev)
    )
    return tile_start, items[order]


def backward_inputs(
    prims: torch.Tensor, index: torch.Tensor, grads: tuple[torch.Tensor, ...]
) -> tuple[torch.dtype, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
           tuple[torch.Tensor, ...]]:
    """A backward launch's inputs in the compute dtype, contiguous: (compute dtype, prims,
    index (N, H, W, K), ys (H,), xs (W,), grads)."""
    _n, height, width, _k = index.shape
    cdt = compute_dtype(prims.dtype)
    ys, xs = pixel_centers_torch(height, width, cdt, prims.device)
    return (cdt, prims.detach().to(cdt).contiguous(), index.contiguous(), ys, xs,
            tuple(g.detach().to(cdt).contiguous() for g in grads))


def gradient_buffer(n_items: int, n_slots: int, width: int, dtype: torch.dtype,
                    device: torch.device) -> tuple[torch.Tensor, bool]:
    """The zeroed buffer a backward kernel writes into, and whether it adds atomically:
    (n_items, width) for atomic adds (summation order not deterministic in float), or
    (n_slots, width) per-slot terms when ``torch.are_deterministic_algorithms_enabled()``."""
    atomic = not torch.are_deterministic_algorithms_enabled()
    return torch.zeros((n_items if atomic else n_slots, width), dtype=dtype,
                       device=device), atomic


def sum_gradient(out: torch.Tensor, atomic: bool, index: torch.Tensor,
                 n_items: int) -> torch.Tensor:
    """(n_items, width) gradient from :func:`gradient_buffer`'s buffer after the kernel:
    per-slot terms summed by ``index_add_`` over ``index`` (N, H, W, K) (deterministic)."""
    if atomic:
        return out
    grad = out.new_zeros((n_items, out.shape[1]))
    return grad.index_add_(0, index.reshape(-1).clamp(min=0), out)

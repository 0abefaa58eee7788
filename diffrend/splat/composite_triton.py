"""Triton backend of the splat compositor (CUDA): launches and autograd glue.

Same contract as :mod:`.composite_numba` and the torch twin :mod:`.composite_reference`
(kernels in :mod:`.composite_triton_kernels`, one program per tile). Runs on CUDA tensors,
or on CPU tensors in Triton's interpreter (``TRITON_INTERPRET=1`` set before triton is first
imported; slow, for tests). Arithmetic is in the inputs' dtype (float32 or float64).

Host synchronisation: none. The tile list bounds are the offsets with M appended, built on
the device (M is the length of ``flatten_ids``, known on the host); the kernels read each
tile's bounds themselves and loop until their list (or every pixel) is done, so no count is
read back. (:func:`.composite.rasterize_to_pixels` validates the offsets and ids before
dispatching, which reads a few reductions back; that is the checking, not the launch.)

Backward writes one gradient row per intersection (no atomics), then sums the rows per
Gaussian by ``flatten_ids`` in a fixed order (:func:`sum_rows`): deterministic.
"""

from __future__ import annotations

import torch
import triton

from . import composite_triton_kernels as ck

CHUNK = 8  # list entries per step of a program's walk (unrolled)


def _launch_shape(tile_size: int, n_channels: int) -> tuple[int, int, int]:
    """(pixel block, padded channel count, warps) of a program: the block is the tile's
    pixels rounded up to a power of two, about one pixel per thread, 1 to 8 warps."""
    block = triton.next_power_of_2(tile_size * tile_size)
    return block, triton.next_power_of_2(n_channels), max(1, min(8, block // 32))


def _tile_start(isect_offsets: torch.Tensor, n_isects: int) -> torch.Tensor:
    """(C * TH * TW + 1,) int64 list bounds of every tile, on the offsets' device."""
    starts = isect_offsets.reshape(-1).to(torch.int64)
    return torch.cat([starts, starts.new_full((1,), n_isects)])


def _flat_inputs(means2d, conics, colors, opacities, flatten_ids):
    """The Gaussian tables as contiguous (G, k) rows and the ids as int64 (detached)."""
    C, N = means2d.shape[:2]
    G = C * N
    D = colors.shape[-1]
    return (means2d.detach().reshape(G, 2).contiguous(),
            conics.detach().reshape(G, 3).contiguous(),
            colors.detach().reshape(G, D).contiguous(),
            opacities.detach().reshape(G).contiguous(),
            flatten_ids.detach().to(torch.int64).contiguous())


def forward(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    image_width: int,
    image_height: int,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch :func:`.composite_triton_kernels.composite_forward_kernel` (not
    differentiable; see ``composite._KernelComposite``).

    Args: as :func:`.composite.rasterize_to_pixels` (means2d (C, N, 2), conics (C, N, 3),
        colors (C, N, D), opacities (C, N), one float dtype; offsets (C, TH, TW)).

    Returns:
        colors: (C, H, W, D) without background; t_final: (C, H, W), both in the inputs'
        dtype; last: (C, H, W) int64 last contributing intersection of each pixel (its
        tile's start - 1 when none).
    """
    C = means2d.shape[0]
    D = colors.shape[-1]
    TH, TW = isect_offsets.shape[1:]
    dev, dtype = means2d.device, means2d.dtype
    m, con, col, op, ids = _flat_inputs(means2d, conics, colors, opacities, flatten_ids)
    out_color = torch.zeros((C, image_height, image_width, D), dtype=dtype, device=dev)
    out_t = torch.ones((C, image_height, image_width), dtype=dtype, device=dev)
    out_last = torch.full((C, image_height, image_width), -1, dtype=torch.int64, device=dev)
    if out_t.numel() == 0:
        return out_color, out_t, out_last
    if ids.numel() == 0:  # valid pointers, never read
        ids = torch.zeros(1, dtype=torch.int64, device=dev)
    if m.numel() == 0:
        m, con = m.new_zeros(1, 2), con.new_zeros(1, 3)
        col, op = col.new_zeros(1, D), op.new_zeros(1)
    block, d_pad, warps = _launch_shape(tile_size, D)
    ck.composite_forward_kernel[(C * TH * TW,)](
        m, con, col, op, _tile_start(isect_offsets, flatten_ids.shape[0]), ids,
        out_color, out_t, out_last, image_height, image_width, TH, TW, D,
        TS=tile_size, BLOCK=block, D_PAD=d_pad, CHUNK=CHUNK, num_warps=warps,
        enable_fp_fusion=False,  # the skip/stop tests must round like the twin's
    )
    return out_color, out_t, out_last


def backward(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
    backgrounds: torch.Tensor | None,
    t_final: torch.Tensor,
    last: torch.Tensor,
    v_colors: torch.Tensor,
    v_alphas: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Launch the backward kernel and sum each intersection's gradient into its Gaussian.

    Args:
        means2d ... flatten_ids: the forward's inputs; backgrounds: (C, D) or None.
        t_final, last: the (C, H, W) outputs of :func:`forward`.
        v_colors: (C, H, W, D), v_alphas: (C, H, W, 1) gradients of the outputs.

    Returns:
        Gradients of means2d (C, N, 2), conics (C, N, 3), colors (C, N, D), opacities
        (C, N) in the inputs' dtype (the background's is computed by the caller).
    """
    C, N = means2d.shape[:2]
    D = colors.shape[-1]
    G = C * N
    TH, TW = isect_offsets.shape[1:]
    H, W = t_final.shape[1:]
    M = flatten_ids.shape[0]
    dev, dtype = means2d.device, means2d.dtype
    m, con, col, op, ids = _flat_inputs(means2d, conics, colors, opacities, flatten_ids)
    rows = [torch.zeros((M, k), dtype=dtype, device=dev) for k in (2, 3, D, 1)]
    if M and H * W:
        bg = (torch.zeros((C, D), dtype=dtype, device=dev) if backgrounds is None
              else backgrounds.detach().to(dtype).contiguous())
        block, d_pad, warps = _launch_shape(tile_size, D)
        ck.composite_backward_kernel[(C * TH * TW,)](
            m, con, col, op, _tile_start(isect_offsets, M), ids, bg,
            t_final.contiguous(), last.contiguous(),
            v_colors.detach().to(dtype).contiguous(),
            v_alphas.detach().to(dtype).reshape(C, H, W).contiguous(),
            *rows, H, W, TH, TW, D,
            TS=tile_size, BLOCK=block, D_PAD=d_pad, CHUNK=CHUNK, num_warps=warps,
            enable_fp_fusion=False,
        )
    g_mean, g_conic, g_color, g_opac = (sum_rows(r, ids, G) for r in rows)
    return (g_mean.reshape(C, N, 2), g_conic.reshape(C, N, 3), g_color.reshape(C, N, D),
            g_opac.reshape(C, N))


def sum_rows(rows: torch.Tensor, ids: torch.Tensor, n: int) -> torch.Tensor:
    """Per-intersection rows (M, k) summed into per-Gaussian rows (n, k) by ``ids`` (M,)
    int64, deterministically: ``index_add_`` adds in order on the CPU; on CUDA it adds with
    atomics, while ``index_put_(accumulate=True)`` sorts the ids (stably) and sums each run
    of equal ids in order."""
    out = rows.new_zeros((n, rows.shape[1]))
    if rows.device.type == "cpu":
        return out.index_add_(0, ids, rows)
    return out.index_put_((ids,), rows, accumulate=True)


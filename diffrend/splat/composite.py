"""The splat compositor: depth-sorted 2D Gaussians blended front to back into images.

:func:`rasterize_to_pixels` checks its arguments, picks a backend (Numba kernels on the CPU,
Triton kernels on CUDA, :mod:`.composite_reference`, the torch twin, elsewhere or on
request) and returns colours and alphas differentiable in means2d, conics, colors,
opacities and backgrounds. The semantics are gsplat's (see
:func:`.composite_reference.rasterize_to_pixels_reference`).
"""

from __future__ import annotations

import importlib
import numbers

import torch

from ..raster.backends import resolve_backend
from .composite_reference import rasterize_to_pixels_reference


def rasterize_to_pixels(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    image_width: int,
    image_height: int,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
    backgrounds: torch.Tensor | None = None,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Alpha-composite depth-sorted 2D Gaussians into C images, front to back.

    Pixel (x, y) has centre (x + 0.5, y + 0.5) in the means2d frame. Per pixel, over its
    tile's list in order: d = centre - mean; sigma = 0.5 (a dx^2 + c dy^2) + b dx dy (skip if
    sigma < 0); alpha = min(0.999, opacity exp(-sigma)) (skip if alpha < 1/255); stop before
    the entry that would take T (1 - alpha) to <= 1e-4; else add colour alpha T, T *= 1 - alpha.

    Args:
        means2d: (C, N, 2) pixel-space centres.
        conics: (C, N, 3) upper triangle (a, b, c) of each inverse 2D covariance.
        colors: (C, N, D) colours, any D >= 1 (depth is composited as an extra channel).
        opacities: (C, N) opacities in [0, 1].
        image_width, image_height: W, H in pixels (positive ints).
        tile_size: tile edge in pixels (positive int); the grid is TH = ceil(H / tile_size)
            by TW = ceil(W / tile_size).
        isect_offsets: (C, TH, TW) int32/int64, the first intersection of each tile; a tile's
            list ends where the next tile's starts, the last one at M (non-decreasing).
        flatten_ids: (M,) int32/int64, the Gaussian (c * N + n) of each intersection, each
            tile's list sorted front to back.
        backgrounds: (C, D) colour seen through the Gaussians, or None (black).
        backend: "auto" (Numba for CPU tensors, Triton for CUDA tensors when triton is
            installed, else the reference), "numba", "triton" (CUDA tensors, or CPU tensors
            under ``TRITON_INTERPRET=1``), "reference".

    Returns:
        render_colors: (C, H, W, D) and render_alphas: (C, H, W, 1) = 1 - final T, in the
        inputs' dtype (float32 or float64). Differentiable in means2d, conics, colors,
        opacities and backgrounds; not in the intersection lists.

    Raises:
        ValueError: naming the argument, for wrong shapes, dtypes, devices, sizes, offsets
            or ids, or an unknown backend.
    """
    _check_inputs(
        means2d, conics, colors, opacities, image_width, image_height, tile_size,
        isect_offsets, flatten_ids, backgrounds,
    )
    image_width, image_height, tile_size = int(image_width), int(image_height), int(tile_size)
    chosen = resolve_backend(backend, means2d.device)
    if chosen == "reference":
        return rasterize_to_pixels_reference(
            means2d, conics, colors, opacities, image_width, image_height, tile_size,
            isect_offsets, flatten_ids, backgrounds,
        )
    # (imported on first use: importing triton takes a while, Numba compiles or loads)
    kernels = importlib.import_module(f"{__package__}.composite_{chosen}")
    return _KernelComposite.apply(
        kernels, means2d, conics, colors, opacities, backgrounds, image_width, image_height,
        tile_size, isect_offsets, flatten_ids,
    )


class _KernelComposite(torch.autograd.Function):
    """Autograd glue around a kernel module (:mod:`.composite_numba` or
    :mod:`.composite_triton`), each with ``forward(means2d, conics, colors, opacities, W, H,
    tile_size, isect_offsets, flatten_ids) -> (colors, T_final, last)`` and ``backward(...,
    backgrounds, T_final, last, v_colors, v_alphas)`` -> the gradients of means2d, conics,
    colors and opacities: (kernels, means2d, conics, colors, opacities, backgrounds or None,
    W, H, tile_size, isect_offsets, flatten_ids) -> (colors (C, H, W, D) with background,
    alphas (C, H, W, 1)); differentiable in means2d ... backgrounds."""

    @staticmethod
    def forward(ctx, kernels, means2d, conics, colors, opacities, backgrounds, width, height,
                tile_size, isect_offsets, flatten_ids):
        rgb, t_final, last = kernels.forward(
            means2d, conics, colors, opacities, width, height, tile_size, isect_offsets,
            flatten_ids,
        )
        t_out = t_final.to(means2d.dtype)[..., None]  # (Numba keeps T in float64)
        if backgrounds is not None:
            rgb = rgb + t_out * backgrounds[:, None, None, :]
        ctx.save_for_backward(
            means2d, conics, colors, opacities, backgrounds, isect_offsets, flatten_ids,
            t_final, last,
        )
        ctx.kernels, ctx.tile_size = kernels, tile_size
        return rgb, 1.0 - t_out

    @staticmethod
    def backward(ctx, v_colors, v_alphas):
        (means2d, conics, colors, opacities, backgrounds, isect_offsets, flatten_ids,
         t_final, last) = ctx.saved_tensors
        g_mean, g_conic, g_color, g_opac = ctx.kernels.backward(
            means2d, conics, colors, opacities, ctx.tile_size, isect_offsets, flatten_ids,
            backgrounds, t_final, last, v_colors, v_alphas,
        )
        g_bg = None
        if backgrounds is not None and ctx.needs_input_grad[5]:
            g_bg = (t_final[..., None] * v_colors.to(t_final.dtype)).sum((1, 2))
            g_bg = g_bg.to(backgrounds.dtype)
        return None, g_mean, g_conic, g_color, g_opac, g_bg, None, None, None, None, None


def _check_inputs(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    image_width: int,
    image_height: int,
    tile_size: int,
    isect_offsets: torch.Tensor,
    flatten_ids: torch.Tensor,
    backgrounds: torch.Tensor | None,
) -> None:
    """Raises ValueError, naming the argument, unless the inputs fit together (see
    :func:`rasterize_to_pixels`)."""
    for name, v in (("image_width", image_width), ("image_height", image_height),
                    ("tile_size", tile_size)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    tensors = {"means2d": means2d, "conics": conics, "colors": colors,
               "opacities": opacities, "isect_offsets": isect_offsets,
               "flatten_ids": flatten_ids}
    if backgrounds is not None:
        tensors["backgrounds"] = backgrounds
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.device != means2d.device:
            raise ValueError(f"{name} is on {t.device}, means2d on {means2d.device}")
    if means2d.dim() != 3 or means2d.shape[-1] != 2:
        raise ValueError(f"means2d must have shape (C, N, 2), got {tuple(means2d.shape)}")
    C, N = means2d.shape[:2]
    if means2d.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"means2d must be float32 or float64, got {means2d.dtype}")
    if conics.shape != (C, N, 3):
        raise ValueError(f"conics must have shape ({C}, {N}, 3), got {tuple(conics.shape)}")
    if colors.dim() != 3 or colors.shape[:2] != (C, N) or colors.shape[2] < 1:
        raise ValueError(f"colors must have shape ({C}, {N}, D), got {tuple(colors.shape)}")
    D = colors.shape[2]
    if opacities.shape != (C, N):
        raise ValueError(f"opacities must have shape ({C}, {N}), got {tuple(opacities.shape)}")
    if backgrounds is not None and backgrounds.shape != (C, D):
        raise ValueError(
            f"backgrounds must have shape ({C}, {D}), got {tuple(backgrounds.shape)}"
        )
    for name in ("conics", "colors", "opacities", "backgrounds"):
        if name in tensors and tensors[name].dtype != means2d.dtype:
            raise ValueError(f"{name} must be {means2d.dtype} like means2d, "
                             f"got {tensors[name].dtype}")
    TH = -(-image_height // tile_size)
    TW = -(-image_width // tile_size)
    if isect_offsets.shape != (C, TH, TW):
        raise ValueError(
            f"isect_offsets must have shape (C, TH, TW) = ({C}, {TH}, {TW}) for a "
            f"{image_width}x{image_height} image and tile_size {tile_size}, got "
            f"{tuple(isect_offsets.shape)}"
        )
    for name, t in (("isect_offsets", isect_offsets), ("flatten_ids", flatten_ids)):
        if t.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"{name} must be int32 or int64, got {t.dtype}")
    if flatten_ids.dim() != 1:
        raise ValueError(f"flatten_ids must have shape (M,), got {tuple(flatten_ids.shape)}")
    M = flatten_ids.shape[0]
    off = isect_offsets.reshape(-1).to(torch.int64)
    if off.numel() and (
        bool((off < 0).any()) or bool((off > M).any()) or bool((off[1:] < off[:-1]).any())
    ):
        raise ValueError(
            f"isect_offsets must be non-decreasing and within [0, M = {M}] (each tile's "
            "list ends where the next one starts)"
        )
    if M and (int(flatten_ids.min()) < 0 or int(flatten_ids.max()) >= C * N):
        raise ValueError(f"flatten_ids must lie in [0, C * N = {C * N})")

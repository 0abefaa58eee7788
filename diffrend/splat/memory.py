"""The memory a Gaussian splatting frame needs, checked against diffrend's budget before the
big allocations.

The budget is :mod:`diffrend.raster.memory`'s (``DIFFREND_MEMORY_BUDGET``: e.g. ``8GB``,
``512MiB`` or ``off``; by default 75 % of the memory this process may use). The estimate
has three parts, each an upper-end figure measured on the CPU path (forward and backward
with autograd):

- per (camera, Gaussian): the projection's and the SH colours' tensors and their saved
  activations and gradients, about 384 values of the inputs' dtype (1.5 KB in float32; the
  benchmark's 1M Gaussians, SH degree 3, one 512 x 512 camera peaked 1.5 GB above the
  scene);
- per (camera, Gaussian, tile) intersection: the sort keys, ids and their permutation
  (6 int64) and the backward's float64 gradient rows (2 + 3 + D + 1 values);
- per pixel: the colours and alphas and their gradients in the inputs' dtype, and the
  compositor's float64 transmittance and int64 last entry.
"""

from __future__ import annotations

import torch

from diffrend.raster.memory import ENV_VAR, FrameMemoryError, memory_budget

VALUES_PER_GAUSSIAN = 384
INT64_PER_ISECT = 6


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


class SplatMemoryError(FrameMemoryError, ValueError):
    """A splatting frame would need more memory than the budget (raised before allocating);
    both a MemoryError (as the mesh rasterizer's) and a ValueError."""


def splat_frame_bytes(n_cameras: int, n_gaussians: int, height: int, width: int,
                      channels: int, dtype: torch.dtype, n_isects: int = 0) -> int:
    """Estimated bytes of one forward+backward of ``rasterization``.

    Args:
        n_cameras, n_gaussians: C and N.
        height, width: the image size.
        channels: D, the composited channels (3 for RGB, +1 with depth).
        dtype: the floats' dtype.
        n_isects: the number of (camera, Gaussian, tile) intersections, 0 before they are
            known.

    Returns:
        The estimate in bytes.
    """
    s = torch.empty((), dtype=dtype).element_size()
    per_gauss = VALUES_PER_GAUSSIAN * s
    per_isect = INT64_PER_ISECT * 8 + (2 + 3 + channels + 1) * 8
    per_pixel = 2 * (channels + 1) * s + 8 + 8
    return (n_cameras * n_gaussians * per_gauss + n_isects * per_isect
            + n_cameras * height * width * per_pixel)


def check_splat_memory(n_cameras: int, n_gaussians: int, height: int, width: int,
                       channels: int, dtype: torch.dtype, device: torch.device,
                       n_isects: int = 0) -> int:
    """Raise :class:`SplatMemoryError` when :func:`splat_frame_bytes` exceeds the budget.

    Returns:
        The estimate in bytes.

    Raises:
        SplatMemoryError: (a ValueError) saying how much the frame needs, the budget and
            how to lower the need or raise the budget.
    """
    need = splat_frame_bytes(n_cameras, n_gaussians, height, width, channels, dtype, n_isects)
    budget, source = memory_budget(torch.device(device))
    if budget is not None and need > budget:
        isects = f" and {n_isects} tile intersections" if n_isects else ""
        raise SplatMemoryError(
            f"rasterizing {n_gaussians} Gaussians{isects} into {n_cameras} image(s) of "
            f"{height}x{width} ({str(dtype).replace('torch.', '')}, with gradients) needs "
            f"about {_mib(need)}, over the memory budget of {_mib(budget)} ({source}). Use "
            f"fewer Gaussians (means), fewer cameras per call (viewmats), a smaller image "
            f"(width, height), or raise the budget with {ENV_VAR} (e.g. {ENV_VAR}=16GB, "
            f"or 'off')."
        )
    return need

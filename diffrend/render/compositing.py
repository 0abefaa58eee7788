"""Compositing of rasterized points into images (PyTorch3D's compositors).

The points rasterizer lists, per pixel, the K nearest points by depth with their squared
distances to the pixel centre; a renderer turns the distances into weights ("alphas",
``1 - d^2 / r^2``) and a compositor mixes the points' features with them:

- :func:`alpha_composite`: front to back, ``sum_k f_k a_k prod_{j<k} (1 - a_j)``;
- :func:`norm_weighted_sum`: ``sum_k a_k f_k / max(sum_k a_k, eps)``;
- :func:`weighted_sum`: ``sum_k a_k f_k``.

The functions take PyTorch3D's layouts (indices and weights ``(N, K, H, W)``, features
``(C, P)``, images ``(N, C, H, W)``) so code written for PyTorch3D's compositors runs
unchanged. Pure torch: differentiable w.r.t. the weights (hence the point positions and
radii) and the features; empty slots (index < 0) contribute nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..ops.transfer import host_tensor

__all__ = [
    "AlphaCompositor",
    "NormWeightedCompositor",
    "alpha_composite",
    "norm_weighted_sum",
    "point_weights",
    "weighted_sum",
]

# PyTorch3D's floor for the total weight of the normalised sum.
_NORM_EPS = 1e-4


def _check(pointsidx: torch.Tensor, alphas: torch.Tensor, pt_clds: torch.Tensor) -> None:
    if not isinstance(pointsidx, torch.Tensor) or pointsidx.ndim != 4:
        raise ValueError("pointsidx must be an (N, K, H, W) tensor, got "
                         f"{getattr(pointsidx, 'shape', type(pointsidx).__name__)}")
    if pointsidx.dtype.is_floating_point or pointsidx.dtype == torch.bool:
        raise ValueError(f"pointsidx must hold integers, got {pointsidx.dtype}")
    if not isinstance(alphas, torch.Tensor) or alphas.shape != pointsidx.shape:
        raise ValueError(f"alphas must have the shape of pointsidx {tuple(pointsidx.shape)}, "
                         f"got {getattr(alphas, 'shape', type(alphas).__name__)}")
    if not isinstance(pt_clds, torch.Tensor) or pt_clds.ndim != 2:
        raise ValueError("pt_clds must be a (C, P) tensor of features, got "
                         f"{getattr(pt_clds, 'shape', type(pt_clds).__name__)}")
    if not pt_clds.dtype.is_floating_point:
        raise ValueError(f"pt_clds must be floating point, got {pt_clds.dtype}")


def _gather(pointsidx: torch.Tensor, alphas: torch.Tensor, pt_clds: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked weights (N, K, H, W) and features (N, K, H, W, C) of the listed points."""
    _check(pointsidx, alphas, pt_clds)
    mask = pointsidx >= 0
    n_points = pt_clds.shape[1]
    if n_points == 0:
        feats = pt_clds.new_zeros((*pointsidx.shape, pt_clds.shape[0]))
    else:
        idx = pointsidx.clamp(min=0).long()
        feats = pt_clds.t()[idx]  # (N, K, H, W, C)
    weights = torch.where(mask, alphas, torch.zeros((), dtype=alphas.dtype,
                                                    device=alphas.device))
    return weights.to(pt_clds.dtype), feats


def alpha_composite(pointsidx: torch.Tensor, alphas: torch.Tensor,
                    pt_clds: torch.Tensor) -> torch.Tensor:
    """Front-to-back alpha compositing of the K listed points of each pixel.

    Args:
        pointsidx: (N, K, H, W) int packed point indices, sorted front to back; < 0 empty.
        alphas: (N, K, H, W) opacity of each listed point (usually in [0, 1]).
        pt_clds: (C, P) features of the P packed points.

    Returns:
        (N, C, H, W) ``sum_k f_k a_k prod_{j<k} (1 - a_j)`` over the non-empty slots.
        Differentiable w.r.t. alphas and pt_clds.
    """
    a, feats = _gather(pointsidx, alphas, pt_clds)
    # transmittance before slot k: prod_{j<k} (1 - a_j), empty slots have a = 0
    trans = torch.cumprod(torch.cat([torch.ones_like(a[:, :1]), 1.0 - a[:, :-1]], 1), 1)
    return ((a * trans)[..., None] * feats).sum(1).permute(0, 3, 1, 2)


def weighted_sum(pointsidx: torch.Tensor, alphas: torch.Tensor,
                 pt_clds: torch.Tensor) -> torch.Tensor:
    """``sum_k a_k f_k`` over the non-empty slots: (N, C, H, W); arguments as
    :func:`alpha_composite`. Differentiable w.r.t. alphas and pt_clds."""
    a, feats = _gather(pointsidx, alphas, pt_clds)
    return (a[..., None] * feats).sum(1).permute(0, 3, 1, 2)


def norm_weighted_sum(pointsidx: torch.Tensor, alphas: torch.Tensor,
                      pt_clds: torch.Tensor) -> torch.Tensor:
    """``sum_k a_k f_k / max(sum_k a_k, 1e-4)`` over the non-empty slots: (N, C, H, W);
    arguments as :func:`alpha_composite`. Differentiable w.r.t. alphas and pt_clds."""
    a, feats = _gather(pointsidx, alphas, pt_clds)
    total = a.sum(1).clamp(min=_NORM_EPS)  # (N, H, W)
    return ((a[..., None] * feats).sum(1) / total[..., None]).permute(0, 3, 1, 2)


def point_weights(idx: torch.Tensor, dists: torch.Tensor,
                  radius: float | torch.Tensor) -> torch.Tensor:
    """PyTorch3D's point weights ``1 - d^2 / r^2`` (N, H, W, K).

    Args:
        idx: (N, H, W, K) packed point indices (< 0 empty).
        dists: (N, H, W, K) squared NDC distances from the pixel centres.
        radius: the rasterizer's radius: a number or a (P,) tensor of per-point radii
            (indexed by ``idx``; differentiable).

    Returns:
        (N, H, W, K) weights, 0 in empty slots; differentiable w.r.t. dists and a radius
        tensor.
    """
    if isinstance(radius, torch.Tensor) and radius.ndim > 0:
        r = radius.to(dists.dtype)[idx.clamp(min=0).long()] if radius.numel() else \
            torch.ones_like(dists)
    else:
        r = float(radius) if not isinstance(radius, torch.Tensor) else radius.to(dists.dtype)
        if not isinstance(r, torch.Tensor) and not r > 0:
            raise ValueError(f"radius must be > 0 to weight points, got {radius}")
    w = 1.0 - dists / (r * r)
    return torch.where(idx >= 0, w, torch.zeros((), dtype=w.dtype, device=w.device))


def _background_tensor(color: Sequence[float] | torch.Tensor | float | None
                       ) -> torch.Tensor | None:
    if color is None:
        return None
    t = torch.as_tensor(color, dtype=torch.float32)
    if t.ndim > 1 or not bool(torch.isfinite(t).all()):
        raise ValueError(f"background_color must be a number or a 1-D sequence of finite "
                         f"numbers, got {color!r}")
    return t


def add_background(pointsidx: torch.Tensor, images: torch.Tensor,
                   background_color: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) with ``background_color`` where no point is listed
    (``pointsidx[:, 0] < 0``), as PyTorch3D does: a colour of C - 1 entries gets an opaque
    alpha appended; C entries are used as they are; one number is broadcast."""
    c = images.shape[1]
    if background_color.device.type == "cpu" and images.device.type == "cuda":
        bg = host_tensor(background_color.tolist(), images.dtype, images.device)
    else:
        bg = background_color.to(images.device, images.dtype)
    if bg.ndim == 0:
        bg = bg.expand(c)
    if bg.shape[0] == c - 1:
        bg = torch.cat([bg, bg.new_ones(1)])
    if bg.shape[0] != c:
        raise ValueError(f"background_color has {bg.shape[0]} entries; the images have {c} "
                         "channels (give C or C - 1 entries)")
    empty = (pointsidx[:, 0] < 0)[:, None]  # (N, 1, H, W)
    return torch.where(empty, bg[None, :, None, None], images)


class _Compositor(nn.Module):
    def __init__(self, fn, background_color: Sequence[float] | torch.Tensor | float | None):
        super().__init__()
        self._fn = fn
        self.background_color = _background_tensor(background_color)

    def forward(self, fragments: torch.Tensor, alphas: torch.Tensor, ptclds: torch.Tensor,
                background_color: Sequence[float] | torch.Tensor | float | None = None
                ) -> torch.Tensor:
        """Images (N, C, H, W) from point indices ``fragments`` (N, K, H, W), ``alphas``
        (N, K, H, W) and features ``ptclds`` (C, P); ``background_color`` overrides the
        stored one for this call."""
        images = self._fn(fragments, alphas, ptclds)
        bg = (_background_tensor(background_color) if background_color is not None
              else self.background_color)
        return images if bg is None else add_background(fragments, images, bg)


class AlphaCompositor(_Compositor):
    """:func:`alpha_composite` as a module (PyTorch3D's name and call signature).

    Args:
        background_color: colour of pixels with no point (None: leave them 0).
    """

    def __init__(self, background_color: Sequence[float] | torch.Tensor | float | None = None):
        super().__init__(alpha_composite, background_color)


class NormWeightedCompositor(_Compositor):
    """:func:`norm_weighted_sum` as a module (PyTorch3D's name and call signature).

    Args:
        background_color: colour of pixels with no point (None: leave them 0).
    """

    def __init__(self, background_color: Sequence[float] | torch.Tensor | float | None = None):
        super().__init__(norm_weighted_sum, background_color)


class WeightedSumCompositor(_Compositor):
    """:func:`weighted_sum` as a module (same call signature as the other compositors).

    Args:
        background_color: colour of pixels with no point (None: leave them 0).
    """

    def __init__(self, background_color: Sequence[float] | torch.Tensor | float | None = None):
        super().__init__(weighted_sum, background_color)

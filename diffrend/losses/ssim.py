"""Structural similarity (SSIM, Wang et al. 2004) of images, as a metric and as the D-SSIM
term of 3D Gaussian splatting's loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor
                     ) -> torch.Tensor:
    """(C, 1, size, size) normalised Gaussian window, one per channel (depthwise conv)."""
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    reduce: bool = True,
) -> torch.Tensor:
    """SSIM of ``pred`` against ``target`` with a Gaussian window (the usual 11 x 11,
    sigma 1.5; constants K1 = 0.01, K2 = 0.03), over the "valid" part of the image (no
    padding), channels averaged: the definition of scikit-image's ``structural_similarity``
    with ``gaussian_weights=True, use_sample_covariance=False``.

    Args:
        pred, target: (N, H, W, C) images (channels last, as the renderers return them)
            with H, W >= ``window_size``; values span ``data_range``.
        window_size: odd side of the window. sigma: its standard deviation in pixels.
        data_range: the values' range (1 for images in [0, 1]).
        reduce: True: the mean over images, (); False: one value per image, (N,).

    Returns:
        SSIM in [-1, 1] (1: identical). Differentiable w.r.t. both inputs; 3DGS's loss uses
        ``1 - ssim(pred, target)``.

    Raises:
        ValueError: shapes that differ or are not (N, H, W, C), images smaller than the
            window, an even or non-positive window, sigma or data_range not > 0.
    """
    for name, t in (("pred", pred), ("target", target)):
        if not torch.is_tensor(t) or t.ndim != 4 or not t.is_floating_point():
            raise ValueError(f"{name} must be a float tensor (N, H, W, C), got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
    if pred.shape != target.shape:
        raise ValueError(f"target: shape {tuple(target.shape)} does not match pred "
                         f"{tuple(pred.shape)}")
    if isinstance(window_size, bool) or not isinstance(window_size, int) or (
            window_size < 1 or window_size % 2 == 0):
        raise ValueError(f"window_size must be an odd int >= 1, got {window_size!r}")
    if min(pred.shape[1:3]) < window_size:
        raise ValueError(f"pred: images ({pred.shape[1]} x {pred.shape[2]}) are smaller "
                         f"than window_size {window_size}")
    for name, v in (("sigma", sigma), ("data_range", data_range)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a number > 0, got {v!r}")
    c = pred.shape[3]
    x, y = pred.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2)
    w = _gaussian_window(window_size, sigma, c, x)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)
         / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)))
    per_image = s.flatten(1).mean(1)
    return per_image.mean() if reduce else per_image

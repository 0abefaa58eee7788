"""Image-space losses and metrics for silhouettes and renders."""

from __future__ import annotations

import torch


def _masks(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate silhouette inputs; return both as (N, H, W)."""
    for name, t in (("pred", pred), ("target", target)):
        if not torch.is_tensor(t):
            raise ValueError(f"{name}: expected a tensor, got {type(t).__name__}")
        if not (t.ndim == 3 or (t.ndim == 4 and t.shape[3] == 1)):
            raise ValueError(f"{name}: expected shape (N, H, W) or (N, H, W, 1), got "
                             f"{tuple(t.shape)}")
    pred = pred[..., 0] if pred.ndim == 4 else pred
    target = target[..., 0] if target.ndim == 4 else target
    if pred.shape != target.shape:
        raise ValueError(f"target: shape {tuple(target.shape)} does not match pred "
                         f"{tuple(pred.shape)}")
    return pred, target


def silhouette_iou(
    pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5
) -> torch.Tensor:
    """Hard intersection-over-union of thresholded silhouettes, per image.

    A pixel is inside a mask when its value is > ``threshold``. Two empty masks have IoU 1
    (they agree perfectly).

    Args:
        pred: (N, H, W) or (N, H, W, 1) values in [0, 1] (e.g. rendered alpha).
        target: same shape as ``pred``.
        threshold: binarisation threshold.

    Returns:
        (N,) float IoU in [0, 1]. A metric: no gradients.
    """
    pred, target = _masks(pred, target)
    with torch.no_grad():
        p, t = pred > threshold, target > threshold
        inter = (p & t).flatten(1).sum(1)
        union = (p | t).flatten(1).sum(1)
        dtype = pred.dtype if pred.is_floating_point() else torch.float32
        iou = inter.to(dtype) / union.clamp(min=1).to(dtype)
        return torch.where(union == 0, torch.ones_like(iou), iou)


def soft_iou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Differentiable IoU loss ``1 - (sum p t + eps) / (sum (p + t - p t) + eps)``, batch mean.

    ``eps`` sits in the numerator too so two empty masks give loss 0 (IoU 1, as in
    ``silhouette_iou``) and the ratio stays finite.

    Args:
        pred: (N, H, W) or (N, H, W, 1) soft silhouette in [0, 1].
        target: same shape as ``pred``.
        eps: smoothing constant.

    Returns:
        Scalar tensor; differentiable w.r.t. ``pred`` (and ``target`` if it requires grad).
    """
    pred, target = _masks(pred, target)
    inter = (pred * target).flatten(1).sum(1)
    union = (pred + target - pred * target).flatten(1).sum(1)
    return (1.0 - (inter + eps) / (union + eps)).mean()


def _masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return err.mean()
    if not torch.is_tensor(mask):
        raise ValueError(f"mask: expected a tensor, got {type(mask).__name__}")
    spatial = tuple(err.shape[:3])
    if mask.ndim == 4 and mask.shape[3] == 1:
        mask = mask[..., 0]
    if tuple(mask.shape) != spatial:
        raise ValueError(f"mask: expected shape {spatial}, got {tuple(mask.shape)}")
    w = mask.to(err.dtype)
    if err.ndim == 4:
        w = w[..., None]
        channels = err.shape[3]
    else:
        channels = 1
    total = (err * w).sum()
    denom = w.sum() * channels
    if not bool(denom > 0):
        # No valid pixel: 0 that still depends on pred, so backward() works.
        return total * 0.0
    return total / denom


def _images(pred: torch.Tensor, target: torch.Tensor) -> None:
    for name, t in (("pred", pred), ("target", target)):
        if not torch.is_tensor(t) or t.ndim not in (3, 4):
            raise ValueError(f"{name}: expected a (N, H, W) or (N, H, W, C) tensor, got "
                             f"{tuple(t.shape) if torch.is_tensor(t) else type(t).__name__}")
    if pred.shape != target.shape:
        raise ValueError(f"target: shape {tuple(target.shape)} does not match pred "
                         f"{tuple(pred.shape)}")


def image_mse(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared error over the valid pixels and all channels.

    Args:
        pred: (N, H, W, C) or (N, H, W) image.
        target: same shape as ``pred``.
        mask: optional (N, H, W) (or (N, H, W, 1)) bool or float weights; only pixels with
            non-zero weight count, and float values weight them.

    Returns:
        Scalar tensor; differentiable w.r.t. ``pred`` (and ``target``). 0 when the mask
        selects nothing.
    """
    _images(pred, target)
    return _masked_mean((pred - target).square(), mask)


def image_l1(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean absolute error over the valid pixels and all channels.

    Args:
        pred: (N, H, W, C) or (N, H, W) image.
        target: same shape as ``pred``.
        mask: optional (N, H, W) (or (N, H, W, 1)) bool or float weights.

    Returns:
        Scalar tensor; differentiable w.r.t. ``pred`` (and ``target``). 0 when the mask
        selects nothing.
    """
    _images(pred, target)
    return _masked_mean((pred - target).abs(), mask)

"""SE(3) exponential / logarithm maps with PyTorch3D's conventions.

A rigid transform is a ROW-vector 4x4 matrix, as in ``Transform3d``::

    M = [[R^T, 0],
         [T,   1]]      (a point p becomes p @ R^T + T = R @ p + T)

where ``R`` is the column-vector rotation of ``so3.py``. Its logarithm is the 6-vector
``[v | w]``: ``w`` the rotation vector (``R = so3_exp_map(w)``) and ``v`` the translation part
of the twist, related to ``T`` by ``T = V(w) @ v`` with ``V`` the left Jacobian of SO(3).

``V`` and its inverse are evaluated in closed form, switching to Taylor series at small angles,
so both maps have finite gradients at the identity. Everything is plain torch.
"""

from __future__ import annotations

import torch

from .rotations import _hat, axis_angle_to_matrix
from .so3 import so3_log_map

__all__ = ["se3_exp_map", "se3_log_map"]

# Below this squared rotation angle the series (to 4th order in the angle) are exact to
# float64 precision; above it the closed forms are well conditioned.
_SMALL_ANGLE_SQ = 1e-6


def _angle_sq(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(theta^2, safe theta, small mask), each ``(N, 1, 1)``, for rotation vectors ``(N, 3)``.

    ``safe theta`` is 1 where the angle is small, so that the unused closed-form branch stays
    finite (a NaN there would leak into the gradient through ``torch.where``).
    """
    t2 = (w * w).sum(-1)[:, None, None]
    small = t2 < _SMALL_ANGLE_SQ
    t = torch.sqrt(torch.where(small, torch.ones_like(t2), t2))
    return t2, t, small


def _left_jacobian(w: torch.Tensor) -> torch.Tensor:
    """``V(w) = I + (1 - cos t)/t^2 K + (t - sin t)/t^3 K^2`` with ``K = hat(w)``, ``t = |w|``."""
    t2, t, small = _angle_sq(w)
    b = torch.where(small, 0.5 - t2 / 24 + t2 * t2 / 720, (1 - torch.cos(t)) / (t * t))
    c = torch.where(small, 1.0 / 6 - t2 / 120 + t2 * t2 / 5040, (t - torch.sin(t)) / (t * t * t))
    k = _hat(w)
    eye = torch.eye(3, dtype=w.dtype, device=w.device)
    return eye + b * k + c * (k @ k)


def _left_jacobian_inv(w: torch.Tensor) -> torch.Tensor:
    """``V(w)^-1 = I - K/2 + d K^2`` with ``d = (1 - (t/2) cot(t/2)) / t^2``; valid for t < 2 pi."""
    t2, t, small = _angle_sq(w)
    half = 0.5 * t
    d_closed = (1 - half * torch.cos(half) / torch.sin(half)) / (t * t)
    d = torch.where(small, 1.0 / 12 + t2 / 720 + t2 * t2 / 30240, d_closed)
    k = _hat(w)
    eye = torch.eye(3, dtype=w.dtype, device=w.device)
    return eye - 0.5 * k + d * (k @ k)


def se3_exp_map(log_transform: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """SE(3) matrices from their logarithms ``[log_translation | log_rotation]``.

    Args:
        log_transform: ``(N, 6)``; columns 0-2 the translation part ``v``, 3-5 the rotation
            vector ``w`` (axis * angle in radians).
        eps: accepted for PyTorch3D compatibility; small angles use Taylor series instead of
            clamping, so it is unused.

    Returns:
        ``(N, 4, 4)`` row-vector matrices ``[[R^T, 0], [V(w) v, 1]]`` with
        ``R = so3_exp_map(w)``. Differentiable, with finite gradients at zero rotation.
    """
    if not isinstance(log_transform, torch.Tensor):
        raise ValueError("log_transform must be a torch.Tensor")
    if log_transform.dim() != 2 or log_transform.shape[1] != 6:
        raise ValueError(f"log_transform must have shape (N, 6); got {list(log_transform.shape)}")
    v, w = log_transform[:, :3], log_transform[:, 3:]
    R = axis_angle_to_matrix(w)
    T = (_left_jacobian(w) @ v[:, :, None])[:, :, 0]
    top = torch.cat((R.transpose(1, 2), torch.zeros_like(R[:, :, :1])), 2)
    bottom = torch.cat((T, torch.ones_like(T[:, :1])), 1)[:, None]
    return torch.cat((top, bottom), 1)


def se3_log_map(
    transform: torch.Tensor, eps: float = 1e-4, cos_bound: float = 1e-4
) -> torch.Tensor:
    """Logarithms ``[log_translation | log_rotation]`` of SE(3) matrices.

    Inverse of :func:`se3_exp_map` for rotation angles below pi.

    Args:
        transform: ``(N, 4, 4)`` row-vector matrices ``[[R^T, 0], [T, 1]]``; the last column
            must be ``(0, 0, 0, 1)`` (checked with ``torch.allclose``).
        eps, cos_bound: accepted for PyTorch3D compatibility; the rotation goes through the
            quaternion-based :func:`so3_log_map`, which needs no clamping, so they are unused.

    Returns:
        ``(N, 6)``: ``V(w)^-1 T`` then the rotation vector ``w`` (angle in ``[0, pi]``).
        Differentiable, with finite gradients at the identity.
    """
    if not isinstance(transform, torch.Tensor):
        raise ValueError("transform must be a torch.Tensor")
    if transform.dim() != 3 or tuple(transform.shape[1:]) != (4, 4):
        raise ValueError(f"transform must have shape (N, 4, 4); got {tuple(transform.shape)}")
    last_col = transform[:, :, 3]
    expected = torch.zeros_like(last_col)
    expected[:, 3] = 1.0
    # diffrend also checks the corner 1 (PyTorch3D checks only the zeros): without it the
    # matrix is not a rigid transform and the log would be silently wrong.
    if not torch.allclose(last_col, expected):
        raise ValueError("transform[:, :, 3] must be (0, 0, 0, 1): not a rigid transform")
    w = so3_log_map(transform[:, :3, :3].transpose(1, 2))
    v = (_left_jacobian_inv(w) @ transform[:, 3, :3, None])[:, :, 0]
    return torch.cat((v, w), 1)

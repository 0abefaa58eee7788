"""SO(3) exponential / logarithm maps and related helpers (PyTorch3D's conventions).

Matrices are batches ``(N, 3, 3)`` acting on column vectors, like ``rotations.py``.
All functions are plain torch and differentiable by autograd; the exp and log maps keep
finite gradients at zero angle and near pi. They compile with ``torch.jit.script``.

Shape errors carry PyTorch3D's wording ("Input tensor shape has to be Nx3.", "Input has to be
a batch of 3x3 Tensors.") after diffrend's own, since code written for PyTorch3D matches it.
"""

from __future__ import annotations

import warnings

import torch

from .math import acos_linear_extrapolation
from .rotations import axis_angle_to_matrix, matrix_to_axis_angle

__all__ = [
    "hat",
    "hat_inv",
    "so3_exp_map",
    "so3_exponential_map",
    "so3_log_map",
    "so3_relative_angle",
    "so3_rotation_angle",
]


def _check_batch(x: torch.Tensor, shape: list[int], name: str, p3d_msg: str) -> None:
    # isinstance is a static True under TorchScript; it catches non-tensors in eager mode.
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor. {p3d_msg}")
    if x.dim() != len(shape) + 1 or list(x.shape[1:]) != shape:
        want = "(N, " + ", ".join([str(s) for s in shape]) + ")"
        raise ValueError(f"{name} must have shape {want}; got {list(x.shape)}. {p3d_msg}")


def hat(v: torch.Tensor) -> torch.Tensor:
    """Skew-symmetric cross-product matrices.

    Args:
        v: ``(N, 3)``.

    Returns:
        ``(N, 3, 3)`` with ``hat(v)[i] @ u == cross(v[i], u)``, i.e.
        ``[[0, -z, y], [z, 0, -x], [-y, x, 0]]``. Differentiable.
    """
    _check_batch(v, [3], "v", "Input vectors have to be 3-dimensional.")
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack((o, -z, y, z, o, -x, -y, x, o), -1).reshape(-1, 3, 3)


def hat_inv(h: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`hat`.

    Args:
        h: ``(N, 3, 3)`` skew-symmetric matrices (checked to 1e-5).

    Returns:
        ``(N, 3)``. Differentiable.
    """
    _check_batch(h, [3, 3], "h", "Input has to be a batch of 3x3 Tensors.")
    if h.numel() > 0 and float((h + h.transpose(1, 2)).abs().max()) > 1e-5:
        raise ValueError("h must be skew-symmetric (h == -h^T)")
    return torch.stack((h[:, 2, 1], h[:, 0, 2], h[:, 1, 0]), -1)


def so3_exp_map(log_rot: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Rotation matrices from rotation vectors (the SO(3) exponential, Rodrigues' formula).

    Args:
        log_rot: ``(N, 3)`` rotation vectors (axis * angle in radians).
        eps: accepted for PyTorch3D compatibility; the small-angle case is handled by a Taylor
            series instead of clamping, so it is unused.

    Returns:
        ``(N, 3, 3)`` rotation matrices. Differentiable, finite gradients at zero.
    """
    _check_batch(log_rot, [3], "log_rot", "Input tensor shape has to be Nx3.")
    return axis_angle_to_matrix(log_rot)


def so3_exponential_map(log_rot: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Deprecated alias of :func:`so3_exp_map` (kept for PyTorch3D compatibility)."""
    warnings.warn(
        "so3_exponential_map is deprecated; use so3_exp_map", DeprecationWarning, stacklevel=2
    )
    return so3_exp_map(log_rot, eps)


def so3_log_map(R: torch.Tensor, eps: float = 1e-4, cos_bound: float = 1e-4) -> torch.Tensor:
    """Rotation vectors from rotation matrices (the SO(3) logarithm).

    Goes through quaternions, which is well conditioned both near the identity and near
    angle pi.

    Args:
        R: ``(N, 3, 3)`` rotation matrices.
        eps, cos_bound: accepted for PyTorch3D compatibility; unused (as in PyTorch3D 0.7).

    Returns:
        ``(N, 3)`` rotation vectors with norm in ``[0, pi]``. Differentiable.
    """
    _check_batch(R, [3, 3], "R", "Input has to be a batch of 3x3 Tensors.")
    return matrix_to_axis_angle(R)


def so3_rotation_angle(
    R: torch.Tensor, eps: float = 1e-4, cos_angle: bool = False, cos_bound: float = 1e-4
) -> torch.Tensor:
    """Rotation angles ``acos((trace(R) - 1) / 2)``.

    Args:
        R: ``(N, 3, 3)`` rotation matrices; the trace must lie in ``[-1 - eps, 3 + eps]``.
        eps: tolerance of that trace check.
        cos_angle: return the cosine of the angle instead of the angle.
        cos_bound: if > 0, acos is linearly extrapolated outside
            ``[-1 + cos_bound, 1 - cos_bound]`` so that gradients stay finite at 0 and pi.

    Returns:
        ``(N,)`` angles in radians (or their cosines). Differentiable.
    """
    _check_batch(R, [3, 3], "R", "Input has to be a batch of 3x3 Tensors.")
    trace = R[:, 0, 0] + R[:, 1, 1] + R[:, 2, 2]
    if bool(((trace < -1.0 - eps) | (trace > 3.0 + eps)).any()):
        raise ValueError("R has a matrix whose trace is outside [-1 - eps, 3 + eps]")
    cos = 0.5 * (trace - 1.0)
    if cos_angle:
        return cos
    if cos_bound > 0.0:
        return acos_linear_extrapolation(cos, (-1.0 + cos_bound, 1.0 - cos_bound))
    return torch.acos(cos)


def so3_relative_angle(
    R1: torch.Tensor,
    R2: torch.Tensor,
    cos_angle: bool = False,
    cos_bound: float = 1e-4,
    eps: float = 1e-4,
) -> torch.Tensor:
    """Geodesic angle between pairs of rotations: the angle of ``R1 @ R2^T``.

    Args:
        R1, R2: ``(N, 3, 3)`` rotation matrices.
        cos_angle, cos_bound, eps: as in :func:`so3_rotation_angle`.

    Returns:
        ``(N,)`` angles in radians (or their cosines). Differentiable w.r.t. R1 and R2.
    """
    _check_batch(R1, [3, 3], "R1", "Input has to be a batch of 3x3 Tensors.")
    _check_batch(R2, [3, 3], "R2", "Input has to be a batch of 3x3 Tensors.")
    if R1.shape[0] != R2.shape[0]:
        raise ValueError(
            f"R1 and R2 must have the same batch size; got {R1.shape[0]}, {R2.shape[0]}"
        )
    return so3_rotation_angle(
        R1 @ R2.transpose(1, 2), eps=eps, cos_angle=cos_angle, cos_bound=cos_bound
    )

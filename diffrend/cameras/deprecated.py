"""PyTorch3D's deprecated camera names, kept so old code keeps working.

Each is a function that warns (``PendingDeprecationWarning``, as PyTorch3D) and returns the
current camera class built from the old argument names; the result's type is the current
class (``FoVPerspectiveCameras`` etc.), exactly as in PyTorch3D.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from .base import _R_DEFAULT, _T_DEFAULT, BatchFloat, Device
from .orthographic import FoVOrthographicCameras, OrthographicCameras
from .perspective import FoVPerspectiveCameras, PerspectiveCameras

__all__ = [
    "OpenGLOrthographicCameras",
    "OpenGLPerspectiveCameras",
    "SfMOrthographicCameras",
    "SfMPerspectiveCameras",
]


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated; use {new} instead. {old} will be removed in a future release.",
        PendingDeprecationWarning,
        stacklevel=3,
    )


def OpenGLPerspectiveCameras(  # noqa: N802 - PyTorch3D's name
    znear: BatchFloat = 1.0,
    zfar: BatchFloat = 100.0,
    aspect_ratio: BatchFloat = 1.0,
    fov: BatchFloat = 60.0,
    degrees: bool = True,
    R: torch.Tensor | Any = _R_DEFAULT,
    T: torch.Tensor | Any = _T_DEFAULT,
    device: Device = "cpu",
) -> FoVPerspectiveCameras:
    """Deprecated: :class:`FoVPerspectiveCameras` with the same arguments (warns)."""
    _warn("OpenGLPerspectiveCameras", "FoVPerspectiveCameras")
    return FoVPerspectiveCameras(
        znear=znear,
        zfar=zfar,
        aspect_ratio=aspect_ratio,
        fov=fov,
        degrees=degrees,
        R=R,
        T=T,
        device=device,
    )


def OpenGLOrthographicCameras(  # noqa: N802 - PyTorch3D's name
    znear: BatchFloat = 1.0,
    zfar: BatchFloat = 100.0,
    top: BatchFloat = 1.0,
    bottom: BatchFloat = -1.0,
    left: BatchFloat = -1.0,
    right: BatchFloat = 1.0,
    scale_xyz: Any = ((1.0, 1.0, 1.0),),
    R: torch.Tensor | Any = _R_DEFAULT,
    T: torch.Tensor | Any = _T_DEFAULT,
    device: Device = "cpu",
) -> FoVOrthographicCameras:
    """Deprecated: :class:`FoVOrthographicCameras` (warns).

    The old box names map as ``top -> max_y``, ``bottom -> min_y``, ``left -> min_x``,
    ``right -> max_x``.
    """
    _warn("OpenGLOrthographicCameras", "FoVOrthographicCameras")
    return FoVOrthographicCameras(
        znear=znear,
        zfar=zfar,
        max_y=top,
        min_y=bottom,
        max_x=right,
        min_x=left,
        scale_xyz=scale_xyz,
        R=R,
        T=T,
        device=device,
    )


def SfMPerspectiveCameras(  # noqa: N802 - PyTorch3D's name
    focal_length: Any = 1.0,
    principal_point: Any = ((0.0, 0.0),),
    R: torch.Tensor | Any = _R_DEFAULT,
    T: torch.Tensor | Any = _T_DEFAULT,
    device: Device = "cpu",
) -> PerspectiveCameras:
    """Deprecated: :class:`PerspectiveCameras` in NDC with the same arguments (warns)."""
    _warn("SfMPerspectiveCameras", "PerspectiveCameras")
    return PerspectiveCameras(
        focal_length=focal_length, principal_point=principal_point, R=R, T=T, device=device
    )


def SfMOrthographicCameras(  # noqa: N802 - PyTorch3D's name
    focal_length: Any = 1.0,
    principal_point: Any = ((0.0, 0.0),),
    R: torch.Tensor | Any = _R_DEFAULT,
    T: torch.Tensor | Any = _T_DEFAULT,
    device: Device = "cpu",
) -> OrthographicCameras:
    """Deprecated: :class:`OrthographicCameras` in NDC with the same arguments (warns)."""
    _warn("SfMOrthographicCameras", "OrthographicCameras")
    return OrthographicCameras(
        focal_length=focal_length, principal_point=principal_point, R=R, T=T, device=device
    )

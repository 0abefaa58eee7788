"""Conversions between OpenCV's camera convention and PerspectiveCameras.

OpenCV: ``x_cam = R_cv @ X + t`` (column vectors), +X right, +Y down, and pixels
``u = fx * x / z + cx``, ``v = fy * y / z + cy`` with the origin at the top-left corner.
PyTorch3D/diffrend: ``X_view = X @ R + T`` (row vectors), +X left, +Y up, intrinsics in NDC
(the shorter image side spans [-1, 1]). The views differ by a half turn about z, so
``R = R_cv^T diag(-1, -1, 1)`` and ``T = t diag(-1, -1, 1)``; with ``s = min(H, W) / 2``,
``f_ndc = (fx, fy) / s`` and ``p_ndc = ((W, H) / 2 - (cx, cy)) / s``.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import _shape
from .perspective import FoVPerspectiveCameras, PerspectiveCameras

__all__ = [
    "cameras_from_opencv_projection",
    "opencv_from_cameras_projection",
    "viewmats_and_intrinsics",
]

_FLIP = (-1.0, -1.0, 1.0)


def _image_size_wh(image_size: Any, like: torch.Tensor) -> torch.Tensor:
    """``(N, 2)`` (height, width) -> ``(N, 2)`` (width, height) in ``like``'s dtype/device."""
    size = torch.as_tensor(image_size, device=like.device).to(like.dtype).reshape(-1, 2)
    if not bool((size > 0).all()):
        raise ValueError("image_size values must be > 0")
    return size.flip(1)


def _check(name: str, value: Any, trailing: tuple[int, ...]) -> None:
    if not torch.is_tensor(value) or value.dim() != len(trailing) + 1:
        raise ValueError(f"{name} must be a batched tensor (N, *{trailing}); got {_shape(value)}")
    if tuple(value.shape[1:]) != trailing:
        raise ValueError(f"{name} must have shape (N, *{trailing}); got {tuple(value.shape)}")


def cameras_from_opencv_projection(
    R: torch.Tensor,
    tvec: torch.Tensor,
    camera_matrix: torch.Tensor,
    image_size: torch.Tensor | Any,
) -> PerspectiveCameras:
    """PerspectiveCameras (in NDC) equivalent to OpenCV cameras.

    Args:
        R: ``(N, 3, 3)`` OpenCV world-to-camera rotations.
        tvec: ``(N, 3)`` OpenCV translations.
        camera_matrix: ``(N, 3, 3)`` intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``
            (skew is ignored).
        image_size: ``(N, 2)`` (height, width) in pixels.

    Returns:
        PerspectiveCameras with ``in_ndc=True`` and ``image_size`` set, whose
        ``transform_points_screen`` reproduces OpenCV's pixel coordinates. Differentiable
        w.r.t. R, tvec and camera_matrix.
    """
    _check("R", R, (3, 3))
    _check("tvec", tvec, (3,))
    _check("camera_matrix", camera_matrix, (3, 3))
    wh = _image_size_wh(image_size, R)
    scale = wh.min(1, keepdim=True).values / 2.0
    focal = torch.stack((camera_matrix[:, 0, 0], camera_matrix[:, 1, 1]), -1) / scale
    principal = (wh / 2.0 - camera_matrix[:, :2, 2]) / scale
    flip = torch.tensor(_FLIP, dtype=R.dtype, device=R.device)
    return PerspectiveCameras(
        focal_length=focal,
        principal_point=principal,
        R=R.transpose(1, 2) * flip,
        T=tvec * flip,
        image_size=wh.flip(1),
        device=R.device,
    )


def opencv_from_cameras_projection(
    cameras: PerspectiveCameras, image_size: torch.Tensor | Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """OpenCV ``(R, tvec, camera_matrix)`` of PerspectiveCameras given in NDC.

    Args:
        cameras: N PerspectiveCameras with ``in_ndc()`` True.
        image_size: ``(N, 2)`` (height, width) in pixels.

    Returns:
        ``R`` ``(N, 3, 3)``, ``tvec`` ``(N, 3)``, ``camera_matrix`` ``(N, 3, 3)``; the inverse
        of :func:`cameras_from_opencv_projection`, differentiable w.r.t. the camera tensors.
    """
    if not isinstance(cameras, PerspectiveCameras):
        raise TypeError(f"cameras must be PerspectiveCameras; got {type(cameras).__name__}")
    if not cameras.in_ndc():
        raise ValueError("cameras must be defined in NDC (in_ndc=True)")
    flip = torch.tensor(_FLIP, dtype=cameras.dtype, device=cameras.device)
    R = (cameras.R * flip).transpose(1, 2)
    tvec = cameras.T * flip
    wh = _image_size_wh(image_size, cameras.R)
    scale = wh.min(1, keepdim=True).values / 2.0
    focal = cameras.focal_length * scale
    principal = wh / 2.0 - cameras.principal_point * scale
    zero = torch.zeros_like(focal[:, 0])
    one = torch.ones_like(zero)
    camera_matrix = torch.stack(
        (focal[:, 0], zero, principal[:, 0], zero, focal[:, 1], principal[:, 1], zero, zero, one),
        -1,
    ).reshape(-1, 3, 3)
    return R, tvec, camera_matrix


def viewmats_and_intrinsics(
    cameras: PerspectiveCameras | FoVPerspectiveCameras, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV/gsplat cameras of N perspective cameras seen at ``height x width`` pixels:
    world-to-camera ``viewmats`` (N, 4, 4) (``x_cam = viewmat @ [X, 1]``, +X right, +Y
    down, +Z forward) and pixel intrinsics ``Ks`` (N, 3, 3), pixel centres at half-integers
    (PyTorch3D's screen space). Differentiable w.r.t. R, T and the intrinsics.

    Args:
        cameras: FoVPerspectiveCameras, or PerspectiveCameras given in NDC.
        height, width: the image size in pixels.

    Raises:
        ValueError: another camera kind, screen-space PerspectiveCameras, a bad size.
    """
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    n = len(cameras)
    size = torch.tensor([[height, width]], dtype=cameras.R.dtype,
                        device=cameras.device).expand(n, 2)
    if isinstance(cameras, FoVPerspectiveCameras):
        flip = torch.tensor(_FLIP, dtype=cameras.R.dtype, device=cameras.device)
        R = (cameras.R * flip).transpose(1, 2)
        tvec = cameras.T * flip
        fov = cameras.fov * (torch.pi / 180.0) if cameras.degrees else cameras.fov
        fov = torch.as_tensor(fov, dtype=R.dtype, device=R.device).reshape(-1).expand(n)
        aspect = torch.as_tensor(cameras.aspect_ratio, dtype=R.dtype,
                                 device=R.device).reshape(-1).expand(n)
        f = min(height, width) / 2.0 / torch.tan(fov / 2)
        zero, one = torch.zeros_like(f), torch.ones_like(f)
        K = torch.stack((f / aspect, zero, zero + width / 2.0, zero, f, zero + height / 2.0,
                         zero, zero, one), -1).reshape(n, 3, 3)
    elif isinstance(cameras, PerspectiveCameras):
        R, tvec, K = opencv_from_cameras_projection(cameras, size)
    else:
        raise ValueError(f"cameras must be FoVPerspectiveCameras or PerspectiveCameras, got "
                         f"{type(cameras).__name__}")
    viewmats = torch.zeros(n, 4, 4, dtype=R.dtype, device=R.device)
    viewmats[:, :3, :3] = R
    viewmats[:, :3, 3] = tvec
    viewmats[:, 3, 3] = 1.0
    return viewmats, K

"""Perspective cameras: FoV (OpenGL-style frustum) and focal-length (multi-view geometry)."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..transforms.transform3d import Transform3d
from .base import (
    _R_DEFAULT,
    _T_DEFAULT,
    BatchFloat,
    CamerasBase,
    Device,
    ImageSize,
    batch_tensors,
    common_dtype,
    matrix_from_k,
)

__all__ = ["FoVPerspectiveCameras", "PerspectiveCameras"]


class FoVPerspectiveCameras(CamerasBase):
    """Perspective cameras given by a vertical field of view (PyTorch3D's definition).

    The projection maps the view frustum to NDC, x and y divided by depth, and
    ``z_ndc = zfar / (zfar - znear) - zfar * znear / ((zfar - znear) * z_view)`` (0 at the
    near plane, 1 at the far plane). In column-vector form::

        K = [[1 / (tan(fov/2) * aspect_ratio), 0, 0, 0],
             [0, 1 / tan(fov/2), 0, 0],
             [0, 0, zfar / (zfar - znear), -zfar * znear / (zfar - znear)],
             [0, 0, 1, 0]]

    Args:
        znear, zfar: near/far planes, scalar or ``(N,)``; ``0 < znear < zfar``.
        aspect_ratio: pixel aspect ratio (width / height of a pixel), scalar or ``(N,)``, > 0.
        fov: vertical field of view, scalar or ``(N,)``, in ``(0, 180)`` degrees (or
            ``(0, pi)`` radians when ``degrees`` is False).
        degrees: whether ``fov`` is in degrees.
        R: ``(N, 3, 3)`` (or ``(3, 3)``) world-to-view rotation, ``X_view = X @ R + T``.
        T: ``(N, 3)`` (or ``(3,)``) translation.
        K: optional ``(N, 4, 4)`` column-vector projection matrix used instead of the
            parameters above (PyTorch3D's option); not validated beyond its shape.
        device: where the tensors live.

    ``znear``, ``zfar``, ``aspect_ratio``, ``fov``, ``degrees`` and ``K`` can be overridden
    per call (``get_projection_transform(fov=...)``). All tensors are differentiable inputs
    (R, T, K, znear, zfar, aspect_ratio, fov).
    """

    _OVERRIDABLE = ("znear", "zfar", "aspect_ratio", "fov", "degrees")

    def __init__(
        self,
        znear: BatchFloat = 1.0,
        zfar: BatchFloat = 100.0,
        aspect_ratio: BatchFloat = 1.0,
        fov: BatchFloat = 60.0,
        degrees: bool = True,
        R: torch.Tensor | Any = _R_DEFAULT,
        T: torch.Tensor | Any = _T_DEFAULT,
        K: torch.Tensor | None = None,
        device: Device = "cpu",
    ) -> None:
        dtype = common_dtype(znear, zfar, aspect_ratio, fov, R, T, K)
        _, t = batch_tensors(
            dtype,
            device,
            znear=(znear, ()),
            zfar=(zfar, ()),
            aspect_ratio=(aspect_ratio, ()),
            fov=(fov, ()),
            R=(R, (3, 3)),
            T=(T, (3,)),
            **({} if K is None else {"K": (K, (4, 4))}),
        )
        if not bool((t["znear"] > 0).all()):
            raise ValueError("znear must be > 0 for a perspective camera")
        if not bool((t["zfar"] > t["znear"]).all()):
            raise ValueError("zfar must be > znear")
        if not bool((t["aspect_ratio"] > 0).all()):
            raise ValueError("aspect_ratio must be > 0")
        limit = 180.0 if degrees else math.pi
        if not bool(((t["fov"] > 0) & (t["fov"] < limit)).all()):
            raise ValueError(f"fov must be in (0, {limit:g}) {'degrees' if degrees else 'radians'}")
        self.znear, self.zfar = t["znear"], t["zfar"]
        self.aspect_ratio, self.fov = t["aspect_ratio"], t["fov"]
        self.degrees = bool(degrees)
        self.R, self.T = t["R"], t["T"]
        self.K = t.get("K")

    def _params(self) -> dict[str, Any]:
        return {
            "znear": self.znear,
            "zfar": self.zfar,
            "aspect_ratio": self.aspect_ratio,
            "fov": self.fov,
            "degrees": self.degrees,
            "R": self.R,
            "T": self.T,
            "K": self.K,
        }

    def _projection(self) -> Transform3d:
        """View -> NDC (batch N); differentiable w.r.t. fov, aspect_ratio, znear, zfar."""
        fov = self.fov * (math.pi / 180.0) if self.degrees else self.fov
        inv_tan = 1.0 / torch.tan(fov / 2)
        depth = self.zfar - self.znear
        return matrix_from_k(
            {
                (0, 0): inv_tan / self.aspect_ratio,
                (1, 1): inv_tan,
                (2, 2): self.zfar / depth,
                (2, 3): -self.zfar * self.znear / depth,
                (3, 2): 1.0,
            },
            like=inv_tan,
        )

    def get_znear(self) -> torch.Tensor:
        """``(N,)`` near planes."""
        return self.znear

    def is_perspective(self) -> bool:
        """True."""
        return True

    def in_ndc(self) -> bool:
        """True: the projection maps to NDC."""
        return True


def focal_length_batch(focal_length: Any, dtype: torch.dtype, device: Device) -> torch.Tensor:
    """PyTorch3D's focal-length forms -> ``(B, 1)`` or ``(B, 2)``.

    A scalar is one camera; a 1D value is one focal length per camera; a 2D value is
    ``(B, 1)`` or ``(B, 2)`` (fx, fy).
    """
    f = torch.as_tensor(focal_length, dtype=dtype, device=device)
    if f.dim() == 0:
        f = f.reshape(1, 1)
    elif f.dim() == 1:
        f = f[:, None]
    if f.dim() != 2 or f.shape[1] not in (1, 2):
        raise ValueError(
            f"focal_length must be a scalar, (N,), (N, 1) or (N, 2); got {tuple(f.shape)}"
        )
    return f


class SfMCamerasBase(CamerasBase):
    """Shared constructor of the focal-length cameras (perspective and orthographic)."""

    def __init__(
        self,
        focal_length: BatchFloat | torch.Tensor = 1.0,
        principal_point: Any = ((0.0, 0.0),),
        R: torch.Tensor | Any = _R_DEFAULT,
        T: torch.Tensor | Any = _T_DEFAULT,
        K: torch.Tensor | None = None,
        device: Device = "cpu",
        in_ndc: bool = True,
        image_size: ImageSize | None = None,
    ) -> None:
        dtype = common_dtype(focal_length, principal_point, R, T, K)
        f = focal_length_batch(focal_length, dtype, device)
        specs: dict[str, tuple[Any, tuple[int, ...]]] = {
            "focal_length": (f, (f.shape[1],)),
            "principal_point": (principal_point, (2,)),
            "R": (R, (3, 3)),
            "T": (T, (3,)),
        }
        if K is not None:
            specs["K"] = (K, (4, 4))
        if image_size is not None:
            specs["image_size"] = (image_size, (2,))
        elif not in_ndc:
            raise ValueError("image_size=(height, width) is required when in_ndc is False")
        n, t = batch_tensors(dtype, device, **specs)
        if image_size is not None and not bool((t["image_size"] >= 1).all()):
            raise ValueError("image_size values must be >= 1")
        self.focal_length = t["focal_length"].expand(n, 2)
        self.principal_point = t["principal_point"]
        self.R, self.T = t["R"], t["T"]
        self.image_size = t.get("image_size")
        self.K = t.get("K")
        self._in_ndc = bool(in_ndc)

    _OVERRIDABLE = ("focal_length", "principal_point")
    # Row of the row-vector projection matrix that holds the principal point.
    _PP_ROW = 2

    def _params(self) -> dict[str, Any]:
        return {
            "focal_length": self.focal_length,
            "principal_point": self.principal_point,
            "R": self.R,
            "T": self.T,
            "K": self.K,
            "in_ndc": self._in_ndc,
            "image_size": self.image_size,
        }

    def get_principal_point(self, **kwargs: Any) -> torch.Tensor:
        """``(N, 2)`` principal point, in NDC or pixels like the focal length.

        Read from the projection matrix, so ``K`` and per-call overrides (``kwargs``, as for
        ``get_projection_transform``) are taken into account; differentiable.
        """
        if self.K is None and not any(k in kwargs for k in ("K", *self._OVERRIDABLE)):
            return self.principal_point
        return self.get_projection_transform(**kwargs).get_matrix()[:, self._PP_ROW, :2]

    def get_image_size(self) -> torch.Tensor | None:
        """``(N, 2)`` ``(height, width)``, or None if not given."""
        return self.image_size

    def in_ndc(self) -> bool:
        """Whether focal length and principal point are in NDC (True) or pixels (False)."""
        return self._in_ndc


class PerspectiveCameras(SfMCamerasBase):
    """Pinhole cameras given by focal length and principal point (PyTorch3D's definition).

    ``x = fx * X / Z + px``, ``y = fy * Y / Z + py``, ``z = 1 / Z`` for view-space
    ``(X, Y, Z)``. With ``in_ndc=True`` (default) the result is NDC. With ``in_ndc=False``
    focal length and principal point are in pixels, the principal point in image
    coordinates (+X right, +Y down), and ``image_size`` is required;
    ``transform_points`` then returns these screen-scaled values and
    ``transform_points_ndc`` converts them to NDC.

    Args:
        focal_length: scalar, ``(N,)``, ``(N, 1)`` or ``(N, 2)`` (fx, fy).
        principal_point: ``(N, 2)`` (or ``(2,)``).
        R, T: ``(N, 3, 3)``, ``(N, 3)`` extrinsics, ``X_view = X @ R + T``.
        K: optional ``(N, 4, 4)`` column-vector projection matrix used instead of focal
            length and principal point (PyTorch3D's option).
        device: where the tensors live.
        in_ndc: whether the intrinsics are in NDC.
        image_size: ``(N, 2)`` or ``(H, W)``; required when ``in_ndc`` is False.

    ``focal_length``, ``principal_point`` and ``K`` can be overridden per call.
    Differentiable w.r.t. focal_length, principal_point, K, R, T.
    """

    def _projection(self) -> Transform3d:
        """View -> NDC or screen (batch N)."""
        fx, fy = self.focal_length.unbind(1)
        px, py = self.principal_point.unbind(1)
        return matrix_from_k(
            {(0, 0): fx, (1, 1): fy, (0, 2): px, (1, 2): py, (2, 3): 1.0, (3, 2): 1.0}, like=fx
        )

    def is_perspective(self) -> bool:
        """True."""
        return True

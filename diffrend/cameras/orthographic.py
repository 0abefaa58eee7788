"""Orthographic cameras: FoV (OpenGL-style box) and focal-length (multi-view geometry)."""

from __future__ import annotations

from typing import Any

import torch

from ..transforms.transform3d import Transform3d
from .base import (
    _R_DEFAULT,
    _T_DEFAULT,
    BatchFloat,
    CamerasBase,
    Device,
    batch_tensors,
    common_dtype,
    matrix_from_k,
)
from .perspective import SfMCamerasBase

__all__ = ["FoVOrthographicCameras", "OrthographicCameras"]


class FoVOrthographicCameras(CamerasBase):
    """Orthographic cameras given by the view box (PyTorch3D's definition).

    ``[min_x, max_x] x [min_y, max_y]`` maps to ``[-1, 1]^2`` (times ``scale_xyz``) and
    ``z_ndc = scale_z * (z_view - znear) / (zfar - znear)``. In column-vector form::

        K = [[2 sx / (max_x - min_x), 0, 0, -(max_x + min_x) / (max_x - min_x)],
             [0, 2 sy / (max_y - min_y), 0, -(max_y + min_y) / (max_y - min_y)],
             [0, 0, sz / (zfar - znear), -znear / (zfar - znear)],
             [0, 0, 0, 1]]

    Args:
        znear, zfar: scalar or ``(N,)``, ``zfar != znear`` (znear may be <= 0).
        max_y, min_y, max_x, min_x: box bounds, scalar or ``(N,)``, non-degenerate.
        scale_xyz: ``(N, 3)`` (or ``(3,)``) extra per-axis scale.
        R, T: ``(N, 3, 3)``, ``(N, 3)`` extrinsics, ``X_view = X @ R + T``.
        K: optional ``(N, 4, 4)`` column-vector projection matrix used instead of the
            parameters above (PyTorch3D's option).
        device: where the tensors live.

    The planes, box, ``scale_xyz`` and ``K`` can be overridden per call
    (``get_projection_transform(znear=...)``). Differentiable w.r.t. every tensor argument.
    """

    _OVERRIDABLE = ("znear", "zfar", "max_y", "min_y", "max_x", "min_x", "scale_xyz")

    def __init__(
        self,
        znear: BatchFloat = 1.0,
        zfar: BatchFloat = 100.0,
        max_y: BatchFloat = 1.0,
        min_y: BatchFloat = -1.0,
        max_x: BatchFloat = 1.0,
        min_x: BatchFloat = -1.0,
        scale_xyz: Any = ((1.0, 1.0, 1.0),),
        R: torch.Tensor | Any = _R_DEFAULT,
        T: torch.Tensor | Any = _T_DEFAULT,
        K: torch.Tensor | None = None,
        device: Device = "cpu",
    ) -> None:
        dtype = common_dtype(znear, zfar, max_y, min_y, max_x, min_x, scale_xyz, R, T, K)
        _, t = batch_tensors(
            dtype,
            device,
            znear=(znear, ()),
            zfar=(zfar, ()),
            max_y=(max_y, ()),
            min_y=(min_y, ()),
            max_x=(max_x, ()),
            min_x=(min_x, ()),
            scale_xyz=(scale_xyz, (3,)),
            R=(R, (3, 3)),
            T=(T, (3,)),
            **({} if K is None else {"K": (K, (4, 4))}),
        )
        for hi, lo in (("zfar", "znear"), ("max_x", "min_x"), ("max_y", "min_y")):
            if not bool((t[hi] != t[lo]).all()):
                raise ValueError(f"{hi} must differ from {lo}")
        self.znear, self.zfar = t["znear"], t["zfar"]
        self.max_y, self.min_y = t["max_y"], t["min_y"]
        self.max_x, self.min_x = t["max_x"], t["min_x"]
        self.scale_xyz = t["scale_xyz"]
        self.R, self.T = t["R"], t["T"]
        self.K = t.get("K")

    def _params(self) -> dict[str, Any]:
        return {
            "znear": self.znear,
            "zfar": self.zfar,
            "max_y": self.max_y,
            "min_y": self.min_y,
            "max_x": self.max_x,
            "min_x": self.min_x,
            "scale_xyz": self.scale_xyz,
            "R": self.R,
            "T": self.T,
            "K": self.K,
        }

    def _projection(self) -> Transform3d:
        """View -> NDC (batch N); differentiable w.r.t. the box, planes and scale."""
        wx = self.max_x - self.min_x
        wy = self.max_y - self.min_y
        depth = self.zfar - self.znear
        sx, sy, sz = self.scale_xyz.unbind(1)
        return matrix_from_k(
            {
                (0, 0): 2.0 * sx / wx,
                (1, 1): 2.0 * sy / wy,
                (0, 3): -(self.max_x + self.min_x) / wx,
                (1, 3): -(self.max_y + self.min_y) / wy,
                (2, 2): sz / depth,
                (2, 3): -self.znear / depth,
                (3, 3): 1.0,
            },
            like=wx,
        )

    def get_znear(self) -> torch.Tensor:
        """``(N,)`` near planes."""
        return self.znear

    def is_perspective(self) -> bool:
        """False."""
        return False

    def in_ndc(self) -> bool:
        """True: the projection maps to NDC."""
        return True


class OrthographicCameras(SfMCamerasBase):
    """Orthographic cameras given by focal length and principal point (PyTorch3D's).

    ``x = fx * X + px``, ``y = fy * Y + py``, ``z = Z`` for view-space ``(X, Y, Z)``.
    ``in_ndc``/``image_size`` work as for :class:`PerspectiveCameras`.

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

    _PP_ROW = 3

    def _projection(self) -> Transform3d:
        """View -> NDC or screen (batch N)."""
        fx, fy = self.focal_length.unbind(1)
        px, py = self.principal_point.unbind(1)
        return matrix_from_k(
            {(0, 0): fx, (1, 1): fy, (0, 3): px, (1, 3): py, (2, 2): 1.0, (3, 3): 1.0}, like=fx
        )

    def is_perspective(self) -> bool:
        """False."""
        return False

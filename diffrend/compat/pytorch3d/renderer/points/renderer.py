"""``pytorch3d.renderer.points.renderer``: PyTorch3D's path, mapped onto diffrend's names.

As PyTorch3D's, ``renderer(point_clouds, R=R, T=T)`` renders from those extrinsics and
leaves them on the rasterizer's cameras. The work is diffrend's.
"""

import torch

from diffrend.modules.points import (
    PointsRenderer as _PointsRenderer,
)
from diffrend.structures import Pointclouds


class PointsRenderer(_PointsRenderer):
    """diffrend's :class:`~diffrend.modules.points.PointsRenderer`; per-call R/T stay on
    the cameras."""

    def forward(self, point_clouds: Pointclouds, **kwargs) -> torch.Tensor:
        """Images; keywords as :meth:`diffrend.modules.points.PointsRenderer.forward`,
        plus ``R``/``T``."""
        R, T = kwargs.pop("R", None), kwargs.pop("T", None)
        if R is not None or T is not None:
            cameras = kwargs.get("cameras")
            cameras = cameras if cameras is not None else self.rasterizer.cameras
            if cameras is None:
                raise ValueError(
                    "Cameras must be specified either at initialization or in the forward "
                    "pass of PointsRasterizer"
                )
            cameras._store_extrinsics(R, T)
        return super().forward(point_clouds, **kwargs)


__all__ = [
    "PointsRenderer",
]

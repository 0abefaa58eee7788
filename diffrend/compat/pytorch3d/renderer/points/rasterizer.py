"""``pytorch3d.renderer.points.rasterizer``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.raster import (
    PointFragments,
    PointsRasterizationSettings,
    PointsRasterizer,
)

__all__ = [
    "PointFragments",
    "PointsRasterizationSettings",
    "PointsRasterizer",
]

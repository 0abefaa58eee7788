"""``pytorch3d.renderer.points.rasterize_points``: PyTorch3D's path."""

from diffrend.raster import (
    rasterize_points,
)

# not yet in diffrend: kMaxPointsPerBin, rasterize_points_python

__all__ = [
    "rasterize_points",
]

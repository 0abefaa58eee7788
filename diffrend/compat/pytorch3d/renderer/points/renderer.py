"""``pytorch3d.renderer.points.renderer``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.points_renderer import (
    PointsRenderer,
)

__all__ = [
    "PointsRenderer",
]

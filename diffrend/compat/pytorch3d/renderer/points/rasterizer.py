"""``pytorch3d.renderer.points.rasterizer``: PyTorch3D's path, mapped onto diffrend's names.

``PointsRasterizer`` here is diffrend's, called as PyTorch3D's is (see
:mod:`..mesh.rasterizer`).
"""

from diffrend.raster import (
    PointFragments,
    PointsRasterizationSettings,
)
from diffrend.raster import (
    PointsRasterizer as _PointsRasterizer,
)
from diffrend.structures import Pointclouds

from ..mesh.rasterizer import _rasterizer_keywords


class PointsRasterizer(_PointsRasterizer):
    """diffrend's :class:`~diffrend.raster.PointsRasterizer`, called as PyTorch3D's is.

    ``forward(point_clouds, **kwargs)`` reads ``cameras``, ``raster_settings``, ``R`` and
    ``T`` and ignores the other keywords; per-call ``R``/``T`` are stored on the cameras, as
    PyTorch3D does.
    """

    def forward(self, point_clouds: Pointclouds, **kwargs) -> PointFragments:
        """Rasterize; see :meth:`diffrend.raster.PointsRasterizer.forward`."""
        return super().forward(point_clouds, **_rasterizer_keywords(kwargs, self.cameras))


__all__ = [
    "PointFragments",
    "PointsRasterizationSettings",
    "PointsRasterizer",
]

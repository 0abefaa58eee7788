"""``pytorch3d.renderer.mesh.rasterizer``: PyTorch3D's path, mapped onto diffrend's names.

PyTorch3D's renderers hand every keyword of ``renderer(meshes, **kwargs)`` to the rasterizer
(and its users call rasterizers the same way, e.g. ``rasterizer(meshes, lights=lights)``),
which picks what it knows. ``MeshRasterizer`` here is diffrend's with that calling
convention; the work is diffrend's.
"""

from diffrend.blend import (
    Fragments,
)
from diffrend.raster import (
    MeshRasterizer as _MeshRasterizer,
)
from diffrend.raster import (
    RasterizationSettings,
)
from diffrend.structures import Meshes


class MeshRasterizer(_MeshRasterizer):
    """diffrend's :class:`~diffrend.raster.MeshRasterizer`, called as PyTorch3D's is.

    ``forward(meshes_world, **kwargs)`` reads ``cameras``, ``raster_settings``, ``R`` and
    ``T`` from the keywords and ignores the others (lights, materials, ...), as PyTorch3D
    does.
    """

    def forward(self, meshes_world: Meshes, **kwargs) -> Fragments:
        """Rasterize; see :meth:`diffrend.raster.MeshRasterizer.forward`."""
        return super().forward(meshes_world, **_rasterizer_keywords(kwargs))


def _rasterizer_keywords(kwargs: dict) -> dict:
    """The keywords a rasterizer reads; PyTorch3D passes the renderer's whole set."""
    return {k: kwargs[k] for k in ("cameras", "raster_settings", "R", "T") if k in kwargs}


__all__ = [
    "Fragments",
    "MeshRasterizer",
    "RasterizationSettings",
]

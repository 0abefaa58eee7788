"""``pytorch3d.renderer.mesh.rasterizer``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.blend import (
    Fragments,
)
from diffrend.raster import (
    MeshRasterizer,
    RasterizationSettings,
)

__all__ = [
    "Fragments",
    "MeshRasterizer",
    "RasterizationSettings",
]

"""``pytorch3d.renderer.mesh.utils``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.shading.bary import clip_barycentric_coordinates as _clip_barycentric_coordinates
from diffrend.shading.bary import interpolate_zbuf as _interpolate_zbuf
from diffrend.shading.rect_pack import (
    PackedRectangle,
    PackedRectangles,
    Rectangle,
    pack_rectangles,
    pack_unique_rectangles,
)

__all__ = [
    "PackedRectangle",
    "PackedRectangles",
    "Rectangle",
    "_clip_barycentric_coordinates",
    "_interpolate_zbuf",
    "pack_rectangles",
    "pack_unique_rectangles",
]

"""``pytorch3d.renderer.mesh.shading``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.shading import (
    flat_shading,
    gouraud_shading,
    phong_shading,
)
from diffrend.shading.shade import (
    _apply_lighting,
)

__all__ = [
    "_apply_lighting",
    "flat_shading",
    "gouraud_shading",
    "phong_shading",
]

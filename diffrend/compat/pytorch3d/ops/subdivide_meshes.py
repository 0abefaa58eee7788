"""``pytorch3d.ops.subdivide_meshes``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.structures import (
    SubdivideMeshes,
)

__all__ = [
    "SubdivideMeshes",
]

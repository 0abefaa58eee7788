"""``pytorch3d.ops.mesh_face_areas_normals``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.ops import (
    mesh_face_areas_normals,
)

__all__ = [
    "mesh_face_areas_normals",
]

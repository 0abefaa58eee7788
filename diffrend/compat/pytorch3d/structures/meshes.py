"""``pytorch3d.structures.meshes``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.structures import (
    Meshes,
    join_meshes_as_batch,
    join_meshes_as_scene,
)

__all__ = [
    "Meshes",
    "join_meshes_as_batch",
    "join_meshes_as_scene",
]

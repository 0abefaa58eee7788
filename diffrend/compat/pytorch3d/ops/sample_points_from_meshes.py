"""``pytorch3d.ops.sample_points_from_meshes``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.losses import (
    sample_points_from_meshes,
)

__all__ = [
    "sample_points_from_meshes",
]

"""``pytorch3d.loss.mesh_normal_consistency``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.losses import (
    mesh_normal_consistency,
)

__all__ = [
    "mesh_normal_consistency",
]

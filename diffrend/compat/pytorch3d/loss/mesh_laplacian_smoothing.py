"""``pytorch3d.loss.mesh_laplacian_smoothing``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.losses import (
    mesh_laplacian_smoothing,
)

__all__ = [
    "mesh_laplacian_smoothing",
]

"""``pytorch3d.loss.mesh_edge_loss``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.losses import (
    mesh_edge_loss,
)

__all__ = [
    "mesh_edge_loss",
]

"""``pytorch3d.loss.chamfer``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.losses import (
    chamfer_distance,
)

__all__ = [
    "chamfer_distance",
]

"""``pytorch3d.utils.torus``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.structures import (
    torus,
)

__all__ = [
    "torus",
]

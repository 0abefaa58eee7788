"""``pytorch3d.renderer.materials``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.renderer import (
    Materials,
)

__all__ = [
    "Materials",
]

"""``pytorch3d.utils.checkerboard``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.shading.checkerboard import (
    checkerboard,
)

__all__ = [
    "checkerboard",
]

"""``pytorch3d.utils.ico_sphere``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.structures import (
    ico_sphere,
)

__all__ = [
    "ico_sphere",
]

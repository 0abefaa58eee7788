"""``pytorch3d.io.pluggable``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.io.pluggable import IO

__all__ = [
    "IO",
]

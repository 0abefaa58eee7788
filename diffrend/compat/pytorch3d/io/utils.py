"""``pytorch3d.io.utils``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.io.views import (
    _read_image,
)

# not yet in diffrend: PathOrStr

__all__ = [
    "_read_image",
]

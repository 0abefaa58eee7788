"""``pytorch3d.ops.packed_to_padded``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.structures import (
    padded_to_packed,
)

# not yet in diffrend: packed_to_padded

__all__ = [
    "padded_to_packed",
]

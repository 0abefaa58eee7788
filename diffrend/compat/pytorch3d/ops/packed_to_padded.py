"""``pytorch3d.ops.packed_to_padded``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.ops import (
    packed_to_padded,
    padded_to_packed,
)

__all__ = [
    "packed_to_padded",
    "padded_to_packed",
]

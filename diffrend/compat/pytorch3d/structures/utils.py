"""``pytorch3d.structures.utils``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.structures import (
    list_to_packed,
    list_to_padded,
    packed_to_list,
    padded_to_list,
    padded_to_packed,
)

__all__ = [
    "list_to_packed",
    "list_to_padded",
    "packed_to_list",
    "padded_to_list",
    "padded_to_packed",
]

"""``pytorch3d.common.datatypes``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.cameras.base import (
    Device,
)

# not yet in diffrend: make_device, get_device

__all__ = [
    "Device",
]

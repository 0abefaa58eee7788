"""``pytorch3d.transforms.transform3d``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.losses.chamfer import (
    _handle_input,
)
from diffrend.transforms import (
    Rotate,
    RotateAxisAngle,
    Scale,
    Transform3d,
    Translate,
)
from diffrend.transforms.transform3d import (
    _broadcast_bmm,
)

__all__ = [
    "Rotate",
    "RotateAxisAngle",
    "Scale",
    "Transform3d",
    "Translate",
    "_broadcast_bmm",
    "_handle_input",
]

"""``pytorch3d.transforms.transform3d``: PyTorch3D's path, mapped onto diffrend's names."""

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

# PyTorch3D's private _handle_input (Translate/Scale argument parsing) has no public
# counterpart; diffrend's parser is transform3d._xyz, with a different signature.

__all__ = [
    "Rotate",
    "RotateAxisAngle",
    "Scale",
    "Transform3d",
    "Translate",
    "_broadcast_bmm",
]

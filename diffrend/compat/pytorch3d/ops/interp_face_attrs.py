"""``pytorch3d.ops.interp_face_attrs``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.shading import (
    interpolate_face_attributes,
)

# not yet in diffrend: interpolate_face_attributes_python

__all__ = [
    "interpolate_face_attributes",
]

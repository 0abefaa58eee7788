"""``pytorch3d.io.pluggable_formats``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.io.pluggable import (
    MeshFormatInterpreter,
    PointcloudFormatInterpreter,
    endswith,
)

__all__ = [
    "MeshFormatInterpreter",
    "PointcloudFormatInterpreter",
    "endswith",
]

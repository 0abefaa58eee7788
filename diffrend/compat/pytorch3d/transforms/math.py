"""``pytorch3d.transforms.math``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.transforms.math import (
    DEFAULT_ACOS_BOUND,
    acos_linear_extrapolation,
)

__all__ = [
    "DEFAULT_ACOS_BOUND",
    "acos_linear_extrapolation",
]

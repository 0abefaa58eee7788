"""``pytorch3d.transforms.se3``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.transforms import (
    se3_exp_map,
    se3_log_map,
)

__all__ = [
    "se3_exp_map",
    "se3_log_map",
]

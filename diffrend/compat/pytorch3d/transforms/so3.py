"""``pytorch3d.transforms.so3``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.transforms import (
    hat,
    hat_inv,
    so3_exp_map,
    so3_exponential_map,
    so3_log_map,
    so3_relative_angle,
    so3_rotation_angle,
)

__all__ = [
    "hat",
    "hat_inv",
    "so3_exp_map",
    "so3_exponential_map",
    "so3_log_map",
    "so3_relative_angle",
    "so3_rotation_angle",
]

"""``pytorch3d.ops.utils``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.ops import (
    convert_pointclouds_to_tensor,
    eyes,
    get_point_covariances,
    is_pointclouds,
    masked_gather,
    wmean,
)

__all__ = [
    "convert_pointclouds_to_tensor",
    "eyes",
    "get_point_covariances",
    "is_pointclouds",
    "masked_gather",
    "wmean",
]

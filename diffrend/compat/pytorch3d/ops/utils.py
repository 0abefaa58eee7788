"""``pytorch3d.ops.utils``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: masked_gather, wmean, eyes, convert_pointclouds_to_tensor,
# is_pointclouds, get_point_covariances

__all__ = [
]

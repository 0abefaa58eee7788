"""``pytorch3d.ops.points_normals``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.ops import (
    estimate_pointcloud_local_coord_frames,
    estimate_pointcloud_normals,
)

__all__ = [
    "estimate_pointcloud_local_coord_frames",
    "estimate_pointcloud_normals",
]

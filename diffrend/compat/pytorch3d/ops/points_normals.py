"""``pytorch3d.ops.points_normals``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: estimate_pointcloud_normals, estimate_pointcloud_local_coord_frames

__all__ = [
]

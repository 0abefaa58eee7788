"""``pytorch3d.structures.pointclouds``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.structures import (
    Pointclouds,
    join_pointclouds_as_batch,
    join_pointclouds_as_scene,
)

__all__ = [
    "Pointclouds",
    "join_pointclouds_as_batch",
    "join_pointclouds_as_scene",
]

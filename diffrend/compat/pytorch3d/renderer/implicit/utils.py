"""``pytorch3d.renderer.implicit.utils``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.structures import (
    HeterogeneousRayBundle,
    RayBundle,
    ray_bundle_to_ray_points,
    ray_bundle_variables_to_ray_points,
)

__all__ = [
    "HeterogeneousRayBundle",
    "RayBundle",
    "ray_bundle_to_ray_points",
    "ray_bundle_variables_to_ray_points",
]

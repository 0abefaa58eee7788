"""Batched mesh and point-cloud structures (PyTorch3D's ``Meshes``, ``Pointclouds``),
ray bundles, ico-spheres and batching helpers."""

from .ico_sphere import SubdivideMeshes, ico_sphere, subdivide_meshes
from .meshes import Meshes, join_meshes_as_batch, join_meshes_as_scene
from .pointclouds import Pointclouds, join_pointclouds_as_batch, join_pointclouds_as_scene
from .rays import (
    HeterogeneousRayBundle,
    RayBundle,
    ray_bundle_to_ray_points,
    ray_bundle_variables_to_ray_points,
)
from .torus import torus
from .utils import (
    list_to_packed,
    list_to_padded,
    packed_to_list,
    padded_to_list,
    padded_to_packed,
    unique_edges,
)

__all__ = [
    "HeterogeneousRayBundle",
    "Meshes",
    "Pointclouds",
    "RayBundle",
    "SubdivideMeshes",
    "ico_sphere",
    "join_meshes_as_batch",
    "join_meshes_as_scene",
    "join_pointclouds_as_batch",
    "join_pointclouds_as_scene",
    "list_to_packed",
    "list_to_padded",
    "packed_to_list",
    "padded_to_list",
    "padded_to_packed",
    "ray_bundle_to_ray_points",
    "ray_bundle_variables_to_ray_points",
    "subdivide_meshes",
    "torus",
    "unique_edges",
]

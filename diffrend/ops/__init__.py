"""Operations over plain tensors used by the structures and losses (PyTorch3D's ``ops``):
k nearest neighbours, point-cloud normals, packed/padded conversions by first index, face
areas and normals, graph Laplacians, continuous remeshing."""

from .knn import KNN, knn_gather, knn_points
from .mesh_geometry import cot_laplacian, laplacian, mesh_face_areas_normals, norm_laplacian
from .packing import packed_to_padded, padded_to_packed
from .points_normals import (
    convert_pointclouds_to_tensor,
    estimate_pointcloud_local_coord_frames,
    estimate_pointcloud_normals,
    eyes,
    get_point_covariances,
    is_pointclouds,
    masked_gather,
    wmean,
)
from .remesh import VertexMap, map_vertex_attributes, remesh

__all__ = [
    "KNN",
    "VertexMap",
    "convert_pointclouds_to_tensor",
    "cot_laplacian",
    "estimate_pointcloud_local_coord_frames",
    "estimate_pointcloud_normals",
    "eyes",
    "get_point_covariances",
    "is_pointclouds",
    "knn_gather",
    "knn_points",
    "laplacian",
    "map_vertex_attributes",
    "masked_gather",
    "mesh_face_areas_normals",
    "norm_laplacian",
    "packed_to_padded",
    "padded_to_packed",
    "remesh",
    "wmean",
]

"""Mesh, point-cloud and image losses with PyTorch3D's names, semantics and defaults."""

from .chamfer import chamfer_distance
from .image import image_l1, image_mse, silhouette_iou, soft_iou_loss
from .laplacian import cot_laplacian
from .mesh_regularizers import (
    mesh_edge_loss,
    mesh_laplacian_smoothing,
    mesh_normal_consistency,
)
from .sampling import sample_points_from_meshes
from .ssim import ssim

__all__ = [
    "chamfer_distance",
    "cot_laplacian",
    "image_l1",
    "image_mse",
    "mesh_edge_loss",
    "mesh_laplacian_smoothing",
    "mesh_normal_consistency",
    "sample_points_from_meshes",
    "silhouette_iou",
    "soft_iou_loss",
    "ssim",
]

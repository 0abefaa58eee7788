"""``pytorch3d.ops.knn``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.ops import (
    KNN,
    knn_gather,
    knn_points,
)

__all__ = [
    "KNN",
    "knn_gather",
    "knn_points",
]

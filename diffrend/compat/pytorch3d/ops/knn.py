"""``pytorch3d.ops.knn``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: knn_points, knn_gather

__all__ = [
]

"""``pytorch3d.ops.laplacian_matrices``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.ops import (
    cot_laplacian,
    laplacian,
    norm_laplacian,
)

__all__ = [
    "cot_laplacian",
    "laplacian",
    "norm_laplacian",
]

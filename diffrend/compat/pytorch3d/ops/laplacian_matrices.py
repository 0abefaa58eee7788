"""``pytorch3d.ops.laplacian_matrices``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.losses import (
    cot_laplacian,
)

# not yet in diffrend: laplacian, norm_laplacian

__all__ = [
    "cot_laplacian",
]

"""``pytorch3d.io.ply_io``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.io import (
    save_ply,
)

# not yet in diffrend: load_ply, MeshPlyFormat, PointcloudPlyFormat

__all__ = [
    "save_ply",
]

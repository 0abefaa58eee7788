"""``pytorch3d.io.ply_io``: PyTorch3D's path, mapped onto diffrend's names.

Deliberate difference: diffrend's ``save_ply`` defaults to ``strict=True`` (out-of-range
face indices and NaN raise) and to 8-bit colours; PyTorch3D's warns and has no colours
argument, so the function here passes ``strict=False``.
"""

from typing import Any

import torch

from diffrend.io.pluggable import MeshPlyFormat, PointcloudPlyFormat
from diffrend.io.ply_io import _load_ply_raw, load_ply
from diffrend.io.ply_io import save_ply as _save_ply


def save_ply(f: Any, verts: torch.Tensor, faces: torch.Tensor | None = None,
             verts_normals: torch.Tensor | None = None, ascii: bool = False,
             decimal_places: int | None = None, path_manager: Any = None) -> None:
    """``diffrend.io.save_ply`` with PyTorch3D's lenient checks (``strict=False``)."""
    _save_ply(f, verts, faces, verts_normals, ascii, decimal_places, path_manager,
              strict=False)


__all__ = [
    "MeshPlyFormat",
    "PointcloudPlyFormat",
    "_load_ply_raw",
    "load_ply",
    "save_ply",
]

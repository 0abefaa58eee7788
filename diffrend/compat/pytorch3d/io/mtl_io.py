"""``pytorch3d.io.mtl_io``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.io.mtl_io import (
    MaterialProperties,
    TextureFiles,
    TextureImages,
    _bilinear_interpolation_grid_sample,
    _bilinear_interpolation_vectorized,
    _parse_mtl,
    make_material_atlas,
    make_mesh_texture_atlas,
)

# not yet in diffrend: load_mtl

__all__ = [
    "MaterialProperties",
    "TextureFiles",
    "TextureImages",
    "_bilinear_interpolation_grid_sample",
    "_bilinear_interpolation_vectorized",
    "_parse_mtl",
    "make_material_atlas",
    "make_mesh_texture_atlas",
]

"""Mesh and point cloud file I/O with PyTorch3D's function names and return shapes
(OBJ/MTL, PLY, ``IO`` with pluggable formats; other formats through trimesh), and
multi-view image datasets (``transforms.json`` / ``cameras.json``, with depth maps) in and
out."""

from .colmap import ColmapScene, ColmapView, colmap_views, is_colmap_folder, load_colmap
from .depth import load_depth
from .gaussians import GaussianCloud, load_gaussian_ply, save_gaussian_ply
from .mesh_io import (
    ObjAux,
    ObjFaces,
    UVTextureData,
    default_mesh_path,
    load_default_mesh,
    load_mesh,
    load_obj,
    load_objs_as_meshes,
    save_obj,
)
from .mtl_io import make_material_atlas, make_mesh_texture_atlas
from .pluggable import (
    IO,
    MeshFormatInterpreter,
    MeshObjFormat,
    MeshPlyFormat,
    PointcloudFormatInterpreter,
    PointcloudPlyFormat,
)
from .ply_io import load_ply, save_ply
from .points_io import load_points_ply, save_points_ply
from .views import MultiViewData, load_views, save_views

__all__ = [
    "IO",
    "ColmapScene",
    "ColmapView",
    "GaussianCloud",
    "MeshFormatInterpreter",
    "MeshObjFormat",
    "MeshPlyFormat",
    "MultiViewData",
    "ObjAux",
    "ObjFaces",
    "PointcloudFormatInterpreter",
    "PointcloudPlyFormat",
    "UVTextureData",
    "default_mesh_path",
    "colmap_views",
    "is_colmap_folder",
    "load_colmap",
    "load_default_mesh",
    "load_depth",
    "load_gaussian_ply",
    "load_mesh",
    "load_obj",
    "load_objs_as_meshes",
    "load_ply",
    "load_points_ply",
    "load_views",
    "make_material_atlas",
    "make_mesh_texture_atlas",
    "save_gaussian_ply",
    "save_obj",
    "save_ply",
    "save_points_ply",
    "save_views",
]

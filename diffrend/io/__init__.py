"""Mesh file I/O through trimesh, with PyTorch3D's function names and return shapes, and
multi-view image datasets (``transforms.json`` / ``cameras.json``) in and out."""

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
    save_ply,
)
from .points_io import load_points_ply, save_points_ply
from .views import MultiViewData, load_views, save_views

__all__ = [
    "MultiViewData",
    "ObjAux",
    "ObjFaces",
    "UVTextureData",
    "default_mesh_path",
    "load_default_mesh",
    "load_mesh",
    "load_obj",
    "load_objs_as_meshes",
    "load_points_ply",
    "load_views",
    "save_obj",
    "save_ply",
    "save_points_ply",
    "save_views",
]

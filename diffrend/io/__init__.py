"""Mesh file I/O through trimesh, with PyTorch3D's function names and return shapes."""

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

__all__ = [
    "ObjAux",
    "ObjFaces",
    "UVTextureData",
    "default_mesh_path",
    "load_default_mesh",
    "load_mesh",
    "load_obj",
    "load_objs_as_meshes",
    "save_obj",
    "save_ply",
]

"""``pytorch3d.io.obj_io``: PyTorch3D's path, mapped onto diffrend's names.

Deliberate difference: diffrend's ``load_obj`` / ``save_obj`` / ``load_objs_as_meshes``
default to ``strict=True`` (out-of-range face indices, empty meshes and partial texture
arguments raise ValueError); PyTorch3D warns ("Faces have invalid indices") or skips, so
the functions here pass ``strict=False``.
"""

from typing import Any

import torch

from diffrend.io import load_obj as _load_obj
from diffrend.io import load_objs_as_meshes as _load_objs_as_meshes
from diffrend.io import save_obj as _save_obj
from diffrend.io.mesh_io import _load_materials
from diffrend.io.pluggable import MeshObjFormat


def load_obj(f: Any, load_textures: bool = True, create_texture_atlas: bool = False,
             texture_atlas_size: int = 4, texture_wrap: str | None = "repeat",
             device: Any = "cpu", path_manager: Any = None, **kwargs: Any):
    """``diffrend.io.load_obj`` with PyTorch3D's lenient checks (``strict=False``)."""
    kwargs.setdefault("strict", False)
    return _load_obj(f, load_textures, create_texture_atlas, texture_atlas_size, texture_wrap,
                     device, path_manager, **kwargs)


def load_objs_as_meshes(files: list, device: Any = None, load_textures: bool = True,
                        create_texture_atlas: bool = False, texture_atlas_size: int = 4,
                        texture_wrap: str | None = "repeat", path_manager: Any = None,
                        **kwargs: Any):
    """``diffrend.io.load_objs_as_meshes`` with PyTorch3D's lenient checks."""
    kwargs.setdefault("strict", False)
    return _load_objs_as_meshes(files, device, load_textures, create_texture_atlas,
                                texture_atlas_size, texture_wrap, path_manager, **kwargs)


def save_obj(f: Any, verts: torch.Tensor, faces: torch.Tensor,
             decimal_places: int | None = None, path_manager: Any = None,
             **kwargs: Any) -> None:
    """``diffrend.io.save_obj`` with PyTorch3D's lenient checks (``strict=False``)."""
    kwargs.setdefault("strict", False)
    _save_obj(f, verts, faces, decimal_places, path_manager, **kwargs)


__all__ = [
    "MeshObjFormat",
    "_load_materials",
    "load_obj",
    "load_objs_as_meshes",
    "save_obj",
]

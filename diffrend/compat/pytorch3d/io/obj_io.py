"""``pytorch3d.io.obj_io``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.io import (
    load_obj,
    load_objs_as_meshes,
    save_obj,
)
from diffrend.io.mesh_io import (
    _load_materials,
)

# not yet in diffrend: MeshObjFormat

__all__ = [
    "_load_materials",
    "load_obj",
    "load_objs_as_meshes",
    "save_obj",
]

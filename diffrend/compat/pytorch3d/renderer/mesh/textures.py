"""``pytorch3d.renderer.mesh.textures``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.shading import (
    TexturesAtlas,
    TexturesBase,
    TexturesUV,
    TexturesVertex,
)
from diffrend.structures.utils import list_to_padded as _list_to_padded_wrapper
from diffrend.structures.utils import padded_to_list as _padded_to_list_wrapper

__all__ = [
    "TexturesAtlas",
    "TexturesBase",
    "TexturesUV",
    "TexturesVertex",
    "_list_to_padded_wrapper",
    "_padded_to_list_wrapper",
]

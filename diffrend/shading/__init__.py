"""Shading: interpolation, textures, lights, materials and shading functions."""

from .interpolate import interpolate_face_attributes
from .lights import (
    AmbientLights,
    DirectionalLights,
    PointLights,
    diffuse,
    diffuse_and_specular,
    specular,
)
from .materials import Materials
from .shade import (
    depth_shading,
    flat_shading,
    gouraud_shading,
    normal_shading,
    phong_shading,
)

__all__ = ["interpolate_face_attributes"]
__all__ += [
    "AmbientLights",
    "DirectionalLights",
    "Materials",
    "PointLights",
    "depth_shading",
    "diffuse",
    "diffuse_and_specular",
    "flat_shading",
    "gouraud_shading",
    "normal_shading",
    "phong_shading",
    "specular",
]

from .textures import (  # noqa: E402 - appended block, kept apart from the lines above
    TexturesAtlas,
    TexturesBase,
    TexturesUV,
    TexturesVertex,
    join_textures,
    sample_texture_atlas,
    sample_texture_map,
)

__all__ += [
    "TexturesAtlas",
    "TexturesBase",
    "TexturesUV",
    "TexturesVertex",
    "join_textures",
    "sample_texture_atlas",
    "sample_texture_map",
]

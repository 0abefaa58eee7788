"""The module layer: PyTorch3D's ``nn.Module`` names as thin shells over the functions.

A module here holds settings and stored defaults (cameras, lights, materials, blend
parameters), resolves a call's overrides in one place and calls the functional core; it has
no rendering logic of its own. The rasterizer modules live with their functions in
:mod:`diffrend.raster` and are re-exported here, so every shell can be found in one place.

    mesh.py      ShaderBase, MeshShader and PyTorch3D's shader names, MeshRenderer(WithFragments)
    points.py    PointsRenderer
    pulsar.py    PulsarRenderer (PyTorch3D's pulsar.Renderer), PulsarPointsRenderer
    splatter.py  SplatterPhongShader
"""

from ..raster import MeshRasterizer, PointsRasterizer
from .mesh import (
    HardDepthShader,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    MeshRenderer,
    MeshRendererWithFragments,
    MeshShader,
    NormalShader,
    ShaderBase,
    SoftDepthShader,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
)
from .points import PointsRenderer
from .pulsar import PulsarPointsRenderer, PulsarRenderer
from .splatter import SplatterPhongShader

__all__ = [
    "HardDepthShader",
    "HardFlatShader",
    "HardGouraudShader",
    "HardPhongShader",
    "MeshRasterizer",
    "MeshRenderer",
    "MeshRendererWithFragments",
    "MeshShader",
    "NormalShader",
    "PointsRasterizer",
    "PointsRenderer",
    "PulsarPointsRenderer",
    "PulsarRenderer",
    "ShaderBase",
    "SoftDepthShader",
    "SoftGouraudShader",
    "SoftPhongShader",
    "SoftSilhouetteShader",
    "SplatterPhongShader",
]

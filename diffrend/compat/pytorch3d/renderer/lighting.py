"""``pytorch3d.renderer.lighting``: PyTorch3D's path, mapped onto diffrend's names.

The light classes are diffrend's with PyTorch3D's ``TensorProperties`` behaviour (1-D values
set the batch size, ``lights[i].attr = v`` writes back); see :mod:`._properties`.
"""

from diffrend.shading import (
    AmbientLights as _AmbientLights,
)
from diffrend.shading import (
    DirectionalLights as _DirectionalLights,
)
from diffrend.shading import (
    PointLights as _PointLights,
)
from diffrend.shading import (
    diffuse,
    specular,
)

from ._properties import PyTorch3DProperties


class PointLights(PyTorch3DProperties, _PointLights):
    """diffrend's :class:`~diffrend.shading.PointLights` with PyTorch3D's batching rules."""


class DirectionalLights(PyTorch3DProperties, _DirectionalLights):
    """diffrend's :class:`~diffrend.shading.DirectionalLights` with PyTorch3D's batching rules."""


class AmbientLights(PyTorch3DProperties, _AmbientLights):
    """diffrend's :class:`~diffrend.shading.AmbientLights` with PyTorch3D's batching rules."""


__all__ = [
    "AmbientLights",
    "DirectionalLights",
    "PointLights",
    "diffuse",
    "specular",
]

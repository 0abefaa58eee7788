"""``pytorch3d.renderer.materials``: PyTorch3D's path, mapped onto diffrend's names.

``Materials`` is diffrend's with PyTorch3D's ``TensorProperties`` behaviour, including a
negative shininess being accepted; see :mod:`._properties`.
"""

from diffrend.shading import (
    Materials as _Materials,
)

from ._properties import PyTorch3DProperties


class Materials(PyTorch3DProperties, _Materials):
    """diffrend's :class:`~diffrend.shading.Materials` with PyTorch3D's batching rules."""

    _allow_negative_shininess = True


__all__ = [
    "Materials",
]

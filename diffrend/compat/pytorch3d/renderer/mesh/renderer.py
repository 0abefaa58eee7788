"""``pytorch3d.renderer.mesh.renderer``: PyTorch3D's path, mapped onto diffrend's names.

As PyTorch3D's, ``renderer(meshes, R=R, T=T)`` leaves R and T on the cameras it used
(diffrend's own renderer applies them to that call only). The work is diffrend's.
"""

import torch

from diffrend.modules.mesh import (
    MeshRenderer as _MeshRenderer,
)
from diffrend.modules.mesh import (
    MeshRendererWithFragments as _MeshRendererWithFragments,
)
from diffrend.structures import Meshes


def _store_call_extrinsics(renderer: _MeshRenderer, kwargs: dict) -> dict:
    """``kwargs`` without ``R``/``T``, which are stored on the cameras the call uses."""
    R, T = kwargs.pop("R", None), kwargs.pop("T", None)
    if R is not None or T is not None:
        renderer._cameras(kwargs.get("cameras"))._store_extrinsics(R, T)
    return kwargs


class MeshRenderer(_MeshRenderer):
    """diffrend's :class:`~diffrend.modules.mesh.MeshRenderer`; per-call R/T stay on the cameras."""

    def forward(self, meshes_world: Meshes, **kwargs) -> torch.Tensor:
        """Images; keywords as :meth:`diffrend.modules.mesh.MeshRenderer.forward`."""
        return super().forward(meshes_world, **_store_call_extrinsics(self, kwargs))


class MeshRendererWithFragments(_MeshRendererWithFragments):
    """diffrend's ``MeshRendererWithFragments``; per-call R/T stay on the cameras."""

    def forward(self, meshes_world: Meshes, **kwargs) -> tuple:
        """(images, fragments); keywords as :meth:`diffrend.modules.mesh.MeshRenderer.forward`."""
        return super().forward(meshes_world, **_store_call_extrinsics(self, kwargs))


__all__ = [
    "MeshRenderer",
    "MeshRendererWithFragments",
]

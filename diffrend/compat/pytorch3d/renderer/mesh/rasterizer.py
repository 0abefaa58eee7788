"""``pytorch3d.renderer.mesh.rasterizer``: PyTorch3D's path, mapped onto diffrend's names.

PyTorch3D's renderers hand every keyword of ``renderer(meshes, **kwargs)`` to the rasterizer
(and its users call rasterizers the same way, e.g. ``rasterizer(meshes, lights=lights)``),
which picks what it knows. ``MeshRasterizer`` here is diffrend's with that calling
convention; the work is diffrend's.
"""

from diffrend.raster import (
    MeshRasterizer as _MeshRasterizer,
)
from diffrend.raster import (
    RasterizationSettings,
)
from diffrend.render.blend import (
    Fragments,
)
from diffrend.structures import Meshes


class MeshRasterizer(_MeshRasterizer):
    """diffrend's :class:`~diffrend.raster.MeshRasterizer`, called as PyTorch3D's is.

    ``forward(meshes_world, **kwargs)`` reads ``cameras``, ``raster_settings``, ``R`` and
    ``T`` from the keywords and ignores the others (lights, materials, ...). Per-call ``R``
    and ``T`` are stored on the cameras, as PyTorch3D's rasterizer does (diffrend's own
    rasterizer leaves the cameras unchanged).
    """

    def forward(self, meshes_world: Meshes, **kwargs) -> Fragments:
        """Rasterize; see :meth:`diffrend.raster.MeshRasterizer.forward`."""
        return super().forward(meshes_world, **_rasterizer_keywords(kwargs, self.cameras))


def _rasterizer_keywords(kwargs: dict, stored_cameras) -> dict:
    """``cameras`` and ``raster_settings`` out of PyTorch3D's whole keyword set.

    Per-call ``R``/``T`` go onto the cameras in use (given, else ``stored_cameras``), where
    PyTorch3D's ``get_world_to_view_transform`` leaves them.
    """
    kw = {k: kwargs[k] for k in ("cameras", "raster_settings") if k in kwargs}
    R, T = kwargs.get("R"), kwargs.get("T")
    cameras = kw["cameras"] if kw.get("cameras") is not None else stored_cameras
    if (R is not None or T is not None) and cameras is not None:
        cameras._store_extrinsics(R, T)
    return kw


__all__ = [
    "Fragments",
    "MeshRasterizer",
    "RasterizationSettings",
]

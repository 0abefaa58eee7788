"""``pytorch3d.renderer.mesh.utils``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: Rectangle, PackedRectangle, PackedRectangles, pack_rectangles,
# pack_unique_rectangles

__all__ = [
]

"""``pytorch3d.renderer.mesh.clip``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.raster.clip import (
    ClippedFaces,
    clip_faces,
)

# not yet in diffrend: ClipFrustum, convert_clipped_rasterization_to_original_faces

__all__ = [
    "ClippedFaces",
    "clip_faces",
]

"""``pytorch3d.renderer.mesh.rasterize_meshes``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.raster import (
    rasterize_meshes,
)

# not yet in diffrend: kEpsilon, kMaxFacesPerBin, non_square_ndc_range, pix_to_non_square_ndc,
# rasterize_meshes_python, edge_function, barycentric_coordinates_clip, barycentric_coordinates,
# point_line_distance, point_triangle_distance

__all__ = [
    "rasterize_meshes",
]

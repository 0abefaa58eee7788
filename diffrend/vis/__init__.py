"""Looking at scenes and textures: plotly figures of meshes, point clouds, cameras and ray
bundles (:mod:`.plotly_vis`), and UV maps with their points drawn on (:mod:`.texture_vis`).

Optional dependencies: plotly and matplotlib (``pip install diffrend[vis]``) are imported
only when a function that needs them is called; ``texturesuv_image_PIL`` needs only Pillow.
This package sits above structures, cameras and shading; nothing in diffrend imports it.
"""

from .plotly_vis import (
    AxisArgs,
    Lighting,
    RayBundleLike,
    Struct,
    get_camera_wireframe,
    plot_batch_individually,
    plot_scene,
)
from .texture_vis import texturesuv_image_matplotlib, texturesuv_image_PIL

__all__ = [
    "AxisArgs",
    "Lighting",
    "RayBundleLike",
    "Struct",
    "get_camera_wireframe",
    "plot_batch_individually",
    "plot_scene",
    "texturesuv_image_PIL",
    "texturesuv_image_matplotlib",
]

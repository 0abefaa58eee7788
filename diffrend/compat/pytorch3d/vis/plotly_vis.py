"""``pytorch3d.vis.plotly_vis``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.vis.plotly_vis import (
    AxisArgs,
    Lighting,
    Struct,
    get_camera_wireframe,
    plot_batch_individually,
    plot_scene,
)

__all__ = [
    "AxisArgs",
    "Lighting",
    "Struct",
    "get_camera_wireframe",
    "plot_batch_individually",
    "plot_scene",
]

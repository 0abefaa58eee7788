"""Jobs: fitting meshes, camera poses and textures to images (``diffrend fit`` etc.).

Each job is a function over explicit inputs (a :class:`~diffrend.io.MultiViewData`, a
mesh, cameras) with a per-step callback; the CLI adds outputs and reports on top.
"""

from .fit_mesh import (
    DEFAULT_STAGES,
    FitMeshResult,
    FitMeshSettings,
    FitStep,
    Stage,
    fit_mesh,
    initial_mesh,
    render_mesh_views,
    sigma_for_blur,
)
from .scene import cameras_focus, headlights, render_target_views, sphere_cameras, unlit
from .smooth_param import SmoothVertexParam

__all__ = [
    "DEFAULT_STAGES",
    "FitMeshResult",
    "FitMeshSettings",
    "FitStep",
    "SmoothVertexParam",
    "Stage",
    "cameras_focus",
    "fit_mesh",
    "headlights",
    "initial_mesh",
    "render_mesh_views",
    "render_target_views",
    "sigma_for_blur",
    "sphere_cameras",
    "unlit",
]

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
from .fit_points import FitPointsResult, FitPointsSettings, fit_points
from .fit_texture import FitTextureResult, FitTextureSettings, fit_texture
from .pose import (
    PoseResult,
    PoseStep,
    evaluate_pose_recovery,
    fit_pose,
    random_rotation_away,
    render_pose_target,
    rotation_error_degrees,
)
from .scene import cameras_focus, headlights, render_target_views, sphere_cameras, unlit
from .smooth_param import SmoothVertexParam

__all__ = [
    "DEFAULT_STAGES",
    "FitMeshResult",
    "FitMeshSettings",
    "FitPointsResult",
    "FitPointsSettings",
    "FitStep",
    "FitTextureResult",
    "FitTextureSettings",
    "PoseResult",
    "PoseStep",
    "SmoothVertexParam",
    "Stage",
    "cameras_focus",
    "evaluate_pose_recovery",
    "fit_mesh",
    "fit_points",
    "fit_pose",
    "fit_texture",
    "headlights",
    "initial_mesh",
    "random_rotation_away",
    "render_mesh_views",
    "render_pose_target",
    "render_target_views",
    "rotation_error_degrees",
    "sigma_for_blur",
    "sphere_cameras",
    "unlit",
]

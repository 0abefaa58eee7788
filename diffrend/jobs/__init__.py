"""Jobs: fitting meshes, camera poses, textures, point clouds and Gaussians to images (the
library behind ``diffrend fit`` etc.).

Each job is a function over explicit inputs (a :class:`~diffrend.io.MultiViewData`, a
mesh, cameras) and a settings dataclass: its model (parameters, render, loss) and a
per-step function, run by the one loop of :mod:`.runner` (progress bar, callbacks,
checkpoints, resume, deterministic mode, Ctrl-C). :mod:`.views` holds what the jobs share
(cameras and target views, the soft-silhouette renderer, normalisation). The CLI
(:mod:`diffrend.cli`) adds output folders and reports on top.
"""

from .fit_mesh import (
    DEFAULT_STAGES,
    FitMeshResult,
    FitMeshSettings,
    FitStep,
    Stage,
    fit_mesh,
    initial_mesh,
)
from .fit_points import FitPointsResult, FitPointsSettings, fit_points
from .fit_texture import FitTextureResult, FitTextureSettings, fit_texture
from .pose import (
    FitPoseSettings,
    PoseResult,
    PoseStep,
    evaluate_pose_recovery,
    fit_pose,
    random_rotation_away,
    render_pose_target,
    rotation_error_degrees,
)
from .smooth_param import SmoothVertexParam
from .splat import FitSplatResult, FitSplatSettings, fit_splat
from .views import (
    cameras_focus,
    headlights,
    render_mesh_views,
    render_target_depth,
    render_target_views,
    sigma_for_blur,
    sphere_cameras,
    unlit,
)

__all__ = [
    "DEFAULT_STAGES",
    "FitMeshResult",
    "FitMeshSettings",
    "FitPointsResult",
    "FitPointsSettings",
    "FitPoseSettings",
    "FitSplatResult",
    "FitSplatSettings",
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
    "fit_splat",
    "fit_texture",
    "headlights",
    "initial_mesh",
    "random_rotation_away",
    "render_mesh_views",
    "render_pose_target",
    "render_target_depth",
    "render_target_views",
    "rotation_error_degrees",
    "sigma_for_blur",
    "sphere_cameras",
    "unlit",
]

"""diffrend: a differentiable renderer for PyTorch.

PyTorch3D's API and conventions (a script that imports these names from ``diffrend`` instead
of ``pytorch3d`` runs unchanged), on Numba CPU kernels with pure-torch references.
"""

import os as _os

# torch and Numba each run an OpenMP thread pool (two different libgomp runtimes). With the
# default active wait, each pool's idle threads spin on the cores the other one needs, and a
# rasterizer call can get 10-50x slower. Passive waiting costs microseconds per parallel
# region. Applies to Numba's pool (loaded below), and to torch's if torch is imported after
# diffrend; set OMP_WAIT_POLICY yourself to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from .blend import BlendParams, hard_rgb_blend, sigmoid_alpha_blend, softmax_rgb_blend
from .cameras import (
    CamerasBase,
    FishEyeCameras,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    camera_position_from_spherical_angles,
    join_cameras_as_batch,
    look_at_rotation,
    look_at_view_transform,
)
from .compositing import (
    AlphaCompositor,
    NormWeightedCompositor,
    WeightedSumCompositor,
    alpha_composite,
    norm_weighted_sum,
    weighted_sum,
)
from .io import load_mesh, load_obj, load_objs_as_meshes, save_obj, save_ply
from .points_renderer import PointsRenderer
from .raster import (
    Fragments,
    MeshRasterizer,
    PointFragments,
    PointsRasterizationSettings,
    PointsRasterizer,
    RasterizationSettings,
    rasterize_faces,
    rasterize_meshes,
    rasterize_points,
    rasterize_points_packed,
)
from .renderer import (
    HardDepthShader,
    HardFlatShader,
    HardGouraudShader,
    HardPhongShader,
    MeshRenderer,
    MeshRendererWithFragments,
    MeshShader,
    NormalShader,
    ShaderBase,
    SoftDepthShader,
    SoftGouraudShader,
    SoftPhongShader,
    SoftSilhouetteShader,
)
from .shading import (
    AmbientLights,
    DirectionalLights,
    Materials,
    PointLights,
    TexturesAtlas,
    TexturesUV,
    TexturesVertex,
    interpolate_face_attributes,
)
from .splatter_shader import SplatterPhongShader
from .structures import (
    HeterogeneousRayBundle,
    Meshes,
    Pointclouds,
    RayBundle,
    ico_sphere,
    join_meshes_as_batch,
    join_pointclouds_as_batch,
    ray_bundle_to_ray_points,
    torus,
)
from .threads import configure_numba as _configure_numba
from .transforms import (
    Transform3d,
    axis_angle_to_matrix,
    matrix_to_quaternion,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
    so3_exp_map,
    so3_log_map,
)

# Numba's threading layer: TBB when installed, else workqueue with a lock around each kernel
# launch; a layer the user chose is kept (see diffrend/threads.py). Only needs to run before
# the first kernel launch, which no import does.
_configure_numba()

__version__ = "0.1.0"

__all__ = [
    "AlphaCompositor",
    "AmbientLights",
    "BlendParams",
    "CamerasBase",
    "DirectionalLights",
    "FishEyeCameras",
    "FoVOrthographicCameras",
    "FoVPerspectiveCameras",
    "Fragments",
    "HardDepthShader",
    "HardFlatShader",
    "HardGouraudShader",
    "HardPhongShader",
    "HeterogeneousRayBundle",
    "Materials",
    "MeshRasterizer",
    "MeshRenderer",
    "MeshRendererWithFragments",
    "MeshShader",
    "Meshes",
    "NormWeightedCompositor",
    "NormalShader",
    "OrthographicCameras",
    "PerspectiveCameras",
    "PointFragments",
    "PointLights",
    "Pointclouds",
    "PointsRasterizationSettings",
    "PointsRasterizer",
    "PointsRenderer",
    "RasterizationSettings",
    "RayBundle",
    "ShaderBase",
    "SoftDepthShader",
    "SoftGouraudShader",
    "SoftPhongShader",
    "SoftSilhouetteShader",
    "SplatterPhongShader",
    "TexturesAtlas",
    "TexturesUV",
    "TexturesVertex",
    "Transform3d",
    "WeightedSumCompositor",
    "alpha_composite",
    "axis_angle_to_matrix",
    "camera_position_from_spherical_angles",
    "hard_rgb_blend",
    "ico_sphere",
    "interpolate_face_attributes",
    "join_cameras_as_batch",
    "join_meshes_as_batch",
    "join_pointclouds_as_batch",
    "load_mesh",
    "load_obj",
    "load_objs_as_meshes",
    "look_at_rotation",
    "look_at_view_transform",
    "matrix_to_quaternion",
    "norm_weighted_sum",
    "quaternion_to_matrix",
    "rasterize_faces",
    "rasterize_meshes",
    "rasterize_points",
    "rasterize_points_packed",
    "ray_bundle_to_ray_points",
    "rotation_6d_to_matrix",
    "save_obj",
    "save_ply",
    "sigmoid_alpha_blend",
    "so3_exp_map",
    "so3_log_map",
    "softmax_rgb_blend",
    "torus",
    "weighted_sum",
]

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
#
# torch imported first has read its settings already: its threads busy-wait, which slowed
# the cow's 512^2 rasterization from 4.7 to 7.0 ms on 2 cores; diffrend.threads then warns
# once, at the first kernel launch, unless the user set a policy of their own.
import sys as _sys  # noqa: E402

_OMP_POLICY_TOO_LATE = "torch" in _sys.modules and not any(
    k in _os.environ for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
)
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Numba's threading layer (TBB when installed, else workqueue with a lock around each kernel
# launch; a layer the user chose is kept) is set by diffrend.threads, which every kernel
# module imports, so `import diffrend` itself does not load Numba.

# The public names and the submodule each comes from. They are imported on first use
# (PEP 562), so `import diffrend` and `diffrend --help` do not pay for torch, trimesh
# and the kernels until something needs them.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "render.blend": (
        "BlendParams", "hard_rgb_blend", "sigmoid_alpha_blend", "softmax_rgb_blend",
    ),
    "cameras": (
        "CamerasBase", "FishEyeCameras", "FoVOrthographicCameras", "FoVPerspectiveCameras",
        "OrthographicCameras", "PerspectiveCameras", "camera_position_from_spherical_angles",
        "join_cameras_as_batch", "look_at_rotation", "look_at_view_transform",
    ),
    "render.compositing": (
        "AlphaCompositor", "NormWeightedCompositor", "WeightedSumCompositor", "alpha_composite",
        "norm_weighted_sum", "weighted_sum",
    ),
    "io": (
        "load_mesh", "load_obj", "load_objs_as_meshes", "save_obj", "save_ply",
    ),
    "modules.points": (
        "PointsRenderer",
    ),
    "raster": (
        "Fragments", "MeshRasterizer", "PointFragments", "PointsRasterizationSettings",
        "PointsRasterizer", "RasterizationSettings", "rasterize_faces", "rasterize_meshes",
        "rasterize_points", "rasterize_points_packed",
    ),
    "modules.mesh": (
        "HardDepthShader", "HardFlatShader", "HardGouraudShader", "HardPhongShader",
        "MeshRenderer", "MeshRendererWithFragments", "MeshShader", "NormalShader", "ShaderBase",
        "SoftDepthShader", "SoftGouraudShader", "SoftPhongShader", "SoftSilhouetteShader",
    ),
    "shading": (
        "AmbientLights", "DirectionalLights", "Materials", "PointLights", "TexturesAtlas",
        "TexturesUV", "TexturesVertex", "interpolate_face_attributes",
    ),
    "modules.splatter": (
        "SplatterPhongShader",
    ),
    "structures": (
        "HeterogeneousRayBundle", "Meshes", "Pointclouds", "RayBundle", "ico_sphere",
        "join_meshes_as_batch", "join_pointclouds_as_batch", "ray_bundle_to_ray_points", "torus",
    ),
    "transforms": (
        "Transform3d", "axis_angle_to_matrix", "matrix_to_quaternion", "quaternion_to_matrix",
        "rotation_6d_to_matrix", "so3_exp_map", "so3_log_map",
    ),
}
_SOURCE = {name: module for module, names in _EXPORTS.items() for name in names}

__version__ = "0.1.0"
__all__ = sorted(_SOURCE)


def __getattr__(name: str):
    """Import a public name (or a submodule, e.g. ``diffrend.io``) on first access."""
    import importlib.util

    if name in _SOURCE:
        value = getattr(importlib.import_module(f".{_SOURCE[name]}", __name__), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}"):
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCE))

"""Batched, differentiable cameras with PyTorch3D's conventions and API.

World/view space: right-handed, +Y up, ``X_view = X_world @ R + T``, the camera looks along +Z.
NDC: +X left, +Y up, the shorter image side spans [-1, 1]. Screen: pixels, origin top-left.
"""

from .base import (
    CamerasBase,
    get_ndc_to_screen_transform,
    get_screen_to_ndc_transform,
    get_world_to_view_transform,
    try_get_projection_transform,
)
from .conversions import (
    cameras_from_opencv_projection,
    opencv_from_cameras_projection,
    viewmats_and_intrinsics,
)
from .deprecated import (
    OpenGLOrthographicCameras,
    OpenGLPerspectiveCameras,
    SfMOrthographicCameras,
    SfMPerspectiveCameras,
)
from .fisheye import FishEyeCameras
from .look_at import camera_position_from_spherical_angles, look_at_rotation, look_at_view_transform
from .orthographic import FoVOrthographicCameras, OrthographicCameras
from .perspective import FoVPerspectiveCameras, PerspectiveCameras
from .utils import camera_to_eye_at_up, join_cameras_as_batch, rotate_on_spot

__all__ = [
    "CamerasBase",
    "FishEyeCameras",
    "FoVOrthographicCameras",
    "FoVPerspectiveCameras",
    "OpenGLOrthographicCameras",
    "OpenGLPerspectiveCameras",
    "OrthographicCameras",
    "PerspectiveCameras",
    "SfMOrthographicCameras",
    "SfMPerspectiveCameras",
    "camera_position_from_spherical_angles",
    "camera_to_eye_at_up",
    "cameras_from_opencv_projection",
    "get_ndc_to_screen_transform",
    "get_screen_to_ndc_transform",
    "get_world_to_view_transform",
    "join_cameras_as_batch",
    "look_at_rotation",
    "look_at_view_transform",
    "opencv_from_cameras_projection",
    "viewmats_and_intrinsics",
    "rotate_on_spot",
    "try_get_projection_transform",
]

"""``pytorch3d.renderer.cameras``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.cameras import (
    CamerasBase,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    OpenGLOrthographicCameras,
    OpenGLPerspectiveCameras,
    OrthographicCameras,
    PerspectiveCameras,
    SfMOrthographicCameras,
    SfMPerspectiveCameras,
    camera_position_from_spherical_angles,
    get_ndc_to_screen_transform,
    get_screen_to_ndc_transform,
    get_world_to_view_transform,
    look_at_rotation,
    look_at_view_transform,
    try_get_projection_transform,
)
from diffrend.shading.lights import (
    _T,
)

__all__ = [
    "CamerasBase",
    "FoVOrthographicCameras",
    "FoVPerspectiveCameras",
    "OpenGLOrthographicCameras",
    "OpenGLPerspectiveCameras",
    "OrthographicCameras",
    "PerspectiveCameras",
    "SfMOrthographicCameras",
    "SfMPerspectiveCameras",
    "_T",
    "camera_position_from_spherical_angles",
    "get_ndc_to_screen_transform",
    "get_screen_to_ndc_transform",
    "get_world_to_view_transform",
    "look_at_rotation",
    "look_at_view_transform",
    "try_get_projection_transform",
]

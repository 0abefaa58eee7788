"""Batched, differentiable cameras with PyTorch3D's conventions and API.

World/view space: right-handed, +Y up, ``X_view = X_world @ R + T``, the camera looks along +Z.
NDC: +X left, +Y up, the shorter image side spans [-1, 1]. Screen: pixels, origin top-left.
"""

from .base import (
    CamerasBase,
    get_ndc_to_screen_transform,
    get_screen_to_ndc_transform,
    get_world_to_view_transform,
)
from .look_at import camera_position_from_spherical_angles, look_at_rotation, look_at_view_transform
from .orthographic import FoVOrthographicCameras, OrthographicCameras
from .perspective import FoVPerspectiveCameras, PerspectiveCameras

__all__ = [
    "CamerasBase",
    "FoVOrthographicCameras",
    "FoVPerspectiveCameras",
    "OrthographicCameras",
    "PerspectiveCameras",
    "camera_position_from_spherical_angles",
    "get_ndc_to_screen_transform",
    "get_screen_to_ndc_transform",
    "get_world_to_view_transform",
    "look_at_rotation",
    "look_at_view_transform",
]

"""``pytorch3d.renderer.camera_utils``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.cameras import (
    camera_to_eye_at_up,
    join_cameras_as_batch,
    rotate_on_spot,
)

__all__ = [
    "camera_to_eye_at_up",
    "join_cameras_as_batch",
    "rotate_on_spot",
]

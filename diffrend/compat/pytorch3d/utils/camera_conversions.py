"""``pytorch3d.utils.camera_conversions``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.cameras import (
    cameras_from_opencv_projection,
    opencv_from_cameras_projection,
)

# not yet in diffrend: pulsar_from_opencv_projection, pulsar_from_cameras_projection (Pulsar)

__all__ = [
    "cameras_from_opencv_projection",
    "opencv_from_cameras_projection",
]

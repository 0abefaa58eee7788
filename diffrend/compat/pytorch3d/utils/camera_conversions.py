"""``pytorch3d.utils.camera_conversions``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: cameras_from_opencv_projection, opencv_from_cameras_projection,
# pulsar_from_opencv_projection, pulsar_from_cameras_projection

__all__ = [
]

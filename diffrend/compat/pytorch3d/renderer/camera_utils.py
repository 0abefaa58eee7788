"""``pytorch3d.renderer.camera_utils``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: camera_to_eye_at_up, rotate_on_spot, join_cameras_as_batch

__all__ = [
]

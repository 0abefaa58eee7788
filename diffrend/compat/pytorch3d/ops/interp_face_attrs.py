"""``pytorch3d.ops.interp_face_attrs``: PyTorch3D's path.

diffrend's ``interpolate_face_attributes`` is plain torch (no kernel), so the ``_python``
twin PyTorch3D keeps for testing is the same function.
"""

from diffrend.shading import interpolate_face_attributes

interpolate_face_attributes_python = interpolate_face_attributes

__all__ = ["interpolate_face_attributes", "interpolate_face_attributes_python"]

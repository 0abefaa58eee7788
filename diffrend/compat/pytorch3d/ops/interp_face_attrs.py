"""``pytorch3d.ops.interp_face_attrs``: PyTorch3D's path.

PyTorch3D keeps a pure-Python twin of its compiled op for testing; here that is diffrend's
plain-torch reference, and ``interpolate_face_attributes`` takes the Numba kernel on the CPU.
"""

from diffrend.shading import interpolate_face_attributes
from diffrend.shading.interpolate import interpolate_face_attributes_reference

interpolate_face_attributes_python = interpolate_face_attributes_reference

__all__ = ["interpolate_face_attributes", "interpolate_face_attributes_python"]

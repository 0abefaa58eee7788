"""``pytorch3d.ops.mesh_face_areas_normals``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: mesh_face_areas_normals

__all__ = [
]

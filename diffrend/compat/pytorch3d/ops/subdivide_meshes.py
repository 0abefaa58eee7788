"""``pytorch3d.ops.subdivide_meshes``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: SubdivideMeshes

__all__ = [
]

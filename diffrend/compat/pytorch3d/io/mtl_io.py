"""``pytorch3d.io.mtl_io``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: make_mesh_texture_atlas, make_material_atlas, MaterialProperties,
# TextureFiles, TextureImages, load_mtl

__all__ = [
]

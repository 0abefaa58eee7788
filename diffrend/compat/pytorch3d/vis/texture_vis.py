"""``pytorch3d.vis.texture_vis``: PyTorch3D's path, mapped onto diffrend's names."""

from diffrend.vis.texture_vis import texturesuv_image_matplotlib, texturesuv_image_PIL

__all__ = [
    "texturesuv_image_PIL",
    "texturesuv_image_matplotlib",
]

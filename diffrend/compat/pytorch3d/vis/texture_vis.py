"""``pytorch3d.vis.texture_vis``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: texturesuv_image_matplotlib, texturesuv_image_PIL

__all__ = [
]

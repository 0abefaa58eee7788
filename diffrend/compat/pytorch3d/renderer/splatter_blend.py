"""``pytorch3d.renderer.splatter_blend``: PyTorch3D's path, mapped onto diffrend's names."""


# not yet in diffrend: SplatterBlender

__all__ = [
]

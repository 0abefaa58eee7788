"""``pytorch3d.renderer.opengl``: PyTorch3D's OpenGL rasterizer path.

PyTorch3D's ``MeshRasterizerOpenGL`` needs EGL and pycuda. Here it is diffrend's own
rasterizer held to the OpenGL rasterizer's contract (one face per pixel, perspective-correct,
near/far-plane clipping, detached fragments, no ``dists``), so code written for it runs on
any device with no OpenGL. See :mod:`.rasterizer_opengl`.
"""

from .rasterizer_opengl import MeshRasterizerOpenGL

__all__ = ["MeshRasterizerOpenGL"]

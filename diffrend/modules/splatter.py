"""``SplatterPhongShader``: Phong shading blended by splatting (Cole et al. 2021).

Phong shading (:func:`diffrend.shading.phong_shading`) on detached fragments, blended by
:class:`diffrend.render.splatter.SplatterBlender`: the gradients of silhouette and occlusion edges
come from the splat positions, barycentric interpolations of the vertices, not from the
rasterizer (so any rasterizer, differentiable or not, can feed it).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch

from ..render.blend import BlendParams
from ..render.splatter import SplatterBlender
from ..shading import Materials, interpolate_face_attributes, phong_shading
from .mesh import ShaderBase

if TYPE_CHECKING:
    from ..cameras.base import CamerasBase
    from ..raster import Fragments
    from ..structures import Meshes

__all__ = ["SplatterPhongShader"]

_SIGMA = 0.5  # the splat std in pixels the method is designed for


class SplatterPhongShader(ShaderBase):
    """Per-pixel (Phong) lighting, blended by splatting each fragment onto its 3x3 pixels.

    Args:
        device: where default lights and materials are created.
        cameras, lights, materials, blend_params: stored defaults; each can be given per
            call. ``blend_params.sigma`` is the splat std in pixels (0.5; other values warn,
            as in PyTorch3D) and ``background_color`` the background.

    Attributes:
        splatter_blender: the :class:`~diffrend.render.splatter.SplatterBlender`, made on the first
            call.
    """

    def __init__(
        self,
        device: torch.device | str = "cpu",
        cameras: CamerasBase | None = None,
        lights: object | None = None,
        materials: Materials | None = None,
        blend_params: BlendParams | None = None,
    ) -> None:
        super().__init__(device, cameras, lights, materials, blend_params)
        self.splatter_blender: SplatterBlender | None = None

    def check_blend_params(self, blend_params: BlendParams) -> None:
        """Warn when ``blend_params.sigma`` is not the 0.5 pixels the method assumes."""
        if blend_params.sigma != _SIGMA:
            warnings.warn(f"SplatterPhongShader got blend_params.sigma={blend_params.sigma}: "
                          f"sigma is the splat std in pixels, and values other than {_SIGMA} "
                          "are unusual", stacklevel=3)

    def forward(
        self,
        fragments: Fragments,
        meshes: Meshes,
        cameras: CamerasBase | None = None,
        lights: object | None = None,
        materials: Materials | None = None,
        blend_params: BlendParams | None = None,
        **_ignored,
    ) -> torch.Tensor:
        """Images (N, H, W, 4): premultiplied RGBA, alpha 0 on the background and below 1 at
        silhouettes. Differentiable w.r.t. vertex positions (through the splat positions and
        the lighting), textures, light/material tensors and cameras; not through the
        fragments, which are detached."""
        cameras = self._get_cameras(cameras)
        lights = lights if lights is not None else self.lights
        materials = materials if materials is not None else self.materials
        blend_params = blend_params if blend_params is not None else self.blend_params
        self.check_blend_params(blend_params)
        texels = meshes.sample_textures(fragments)
        fixed = fragments.detach()
        colors = phong_shading(meshes, fixed, lights, cameras, materials, texels)
        # World positions of the fragments: the vertices interpolated with the detached
        # barycentrics, so the gradients reach the vertices.
        verts = meshes.verts_packed()
        points = interpolate_face_attributes(fixed.pix_to_face, fixed.bary_coords,
                                             verts[meshes.faces_packed()])
        if self.splatter_blender is None:
            self.splatter_blender = SplatterBlender(tuple(colors.shape[:4]), colors.device)
        return self.splatter_blender(colors, points, cameras, fixed.pix_to_face < 0,
                                     blend_params)

"""The PyTorch3D-style module layer: ``MeshRenderer`` and shaders.

A shader is one class, :class:`MeshShader`, parameterised by a shading function and a
blending function; PyTorch3D's shader names (``SoftPhongShader`` etc.) are subclasses that
only fix those two, so ``isinstance`` and subclassing work as with PyTorch3D. Modules hold
settings only; per-call values are explicit keyword arguments and are resolved in one place
(:meth:`MeshShader._resolve`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..gradients.methods import METHODS as GRADIENT_METHODS
from ..gradients.methods import check_gradient_method, edge_gradient
from ..raster import Fragments, MeshRasterizer, RasterizationSettings, parse_image_size
from ..raster.memory import fragment_bytes_per_slot
from ..render.blend import BlendParams
from ..render.dispatch import BLENDS, SHADINGS, Scene, shade_fragments
from ..shading import Materials, PointLights

if TYPE_CHECKING:
    from ..cameras.base import CamerasBase
    from ..structures import Meshes

__all__ = [
    "GRADIENT_METHODS", "HardDepthShader", "HardFlatShader", "HardGouraudShader",
    "HardPhongShader", "MeshRenderer", "MeshRendererWithFragments", "MeshShader",
    "NormalShader", "ShaderBase", "SoftDepthShader", "SoftGouraudShader", "SoftPhongShader",
    "SoftSilhouetteShader",
]


class ShaderBase(nn.Module):
    """Holder of a shader's scene defaults: cameras, lights, materials, blend parameters.

    PyTorch3D's base class for shaders; subclass it and write ``forward(fragments, meshes,
    **kwargs)`` for a shader of your own (``self._get_cameras(**kwargs)`` resolves the
    cameras of a call). :class:`MeshShader` is diffrend's shader.

    Args:
        device: where default lights and materials are created.
        cameras, lights, materials, blend_params: stored defaults. Defaults:
            ``PointLights()``, ``Materials()``, ``BlendParams()``; cameras may be given per call.
    """

    def __init__(
        self,
        device: torch.device | str = "cpu",
        cameras: CamerasBase | None = None,
        lights: object | None = None,
        materials: Materials | None = None,
        blend_params: BlendParams | None = None,
    ) -> None:
        super().__init__()
        self.cameras = cameras
        self.lights = lights if lights is not None else PointLights(device=device)
        self.materials = materials if materials is not None else Materials(device=device)
        self.blend_params = blend_params if blend_params is not None else BlendParams()

    def _get_cameras(self, cameras: CamerasBase | None = None, **_ignored) -> CamerasBase:
        """The call's cameras, else the stored ones; ValueError when there are none."""
        cameras = cameras if cameras is not None else self.cameras
        if cameras is None:
            raise ValueError("Cameras must be specified either at initialization or in the "
                             "forward pass of the shader")
        return cameras

    def to(self, *args, **kwargs) -> ShaderBase:  # noqa: D102 - nn.Module's signature
        super().to(*args, **kwargs)
        device = torch.empty(0).to(*args, **kwargs).device
        for name in ("cameras", "lights", "materials"):
            value = getattr(self, name)
            if value is not None and hasattr(value, "to"):
                setattr(self, name, value.to(device))
        return self


class MeshShader(ShaderBase):
    """Shade fragments and blend them into images.

    Args:
        shading: "phong", "gouraud", "flat", "silhouette", "normals" or "depth".
        blend: "hard", "softmax" (SoftRas colour) or "sigmoid" (SoftRas silhouette); for
            "depth", "hard" gives the nearest depth and anything else soft depth.
        device: where default lights/materials are created.
        cameras, lights, materials, blend_params: stored defaults; each can be given per call.
            Defaults: ``PointLights()``, ``Materials()``, ``BlendParams()``.
        gradient_method: how silhouette and occlusion edges get gradients (one of
            :data:`GRADIENT_METHODS`): "soft" for the SoftRas blends; with ``blend="hard"``,
            "hard" (none), "antialias", "nmr" or "opendr". None: "soft" or "hard" as the
            blend implies.

    Raises:
        ValueError: unknown shading, blend or gradient_method, or a method that does not
            fit the blend.
    """

    def __init__(
        self,
        shading: str,
        blend: str,
        device: torch.device | str = "cpu",
        cameras: CamerasBase | None = None,
        lights: object | None = None,
        materials: Materials | None = None,
        blend_params: BlendParams | None = None,
        gradient_method: str | None = None,
    ) -> None:
        super().__init__(device, cameras, lights, materials, blend_params)
        if shading not in SHADINGS:  # checked here too, so that a bad name fails at once
            raise ValueError(f"shading must be one of {SHADINGS}, got {shading!r}")
        if blend not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
        self.shading = shading
        self.blend = blend
        self.gradient_method = check_gradient_method(shading, blend, gradient_method)

    def _resolve(self, cameras, lights, materials, blend_params) -> Scene:
        cameras = cameras if cameras is not None else self.cameras
        if cameras is None and self.shading not in ("silhouette", "normals"):
            raise ValueError(f"{self.shading} shading needs cameras: pass them at "
                             "construction or call")
        return Scene(
            cameras=cameras,
            lights=lights if lights is not None else self.lights,
            materials=materials if materials is not None else self.materials,
            blend_params=blend_params if blend_params is not None else self.blend_params,
        )

    def forward(
        self,
        fragments: Fragments,
        meshes: Meshes,
        cameras: CamerasBase | None = None,
        lights: object | None = None,
        materials: Materials | None = None,
        blend_params: BlendParams | None = None,
    ) -> torch.Tensor:
        """Images (N, H, W, 4) RGBA ((N, H, W, 1) for depth), differentiable w.r.t. the
        scene tensors that reach them (vertices, textures, lights, materials, cameras)."""
        scene = self._resolve(cameras, lights, materials, blend_params)
        images = shade_fragments(self.shading, self.blend, fragments, meshes, scene)
        if self.gradient_method in ("soft", "hard"):
            return images
        if scene.cameras is None:
            raise ValueError(f"gradient_method={self.gradient_method!r} needs cameras: pass "
                             "them at construction or call")
        return edge_gradient(self.gradient_method, images, fragments, meshes, scene.cameras)


class _NamedShader(MeshShader):
    """A :class:`MeshShader` with its (shading, blend) fixed by the subclass: PyTorch3D's
    shader names, usable with ``isinstance`` and as base classes."""

    SHADING = ""
    BLEND = ""

    def __init__(
        self,
        device: torch.device | str = "cpu",
        cameras: CamerasBase | None = None,
        lights: object | None = None,
        materials: Materials | None = None,
        blend_params: BlendParams | None = None,
        gradient_method: str | None = None,
    ) -> None:
        super().__init__(self.SHADING, self.BLEND, device, cameras, lights, materials,
                         blend_params, gradient_method)


class HardPhongShader(_NamedShader):
    """Per-pixel (Phong) lighting of the nearest face: ``MeshShader("phong", "hard")``."""

    SHADING, BLEND = "phong", "hard"


class SoftPhongShader(_NamedShader):
    """Per-pixel lighting with SoftRas blending: ``MeshShader("phong", "softmax")``."""

    SHADING, BLEND = "phong", "softmax"


class HardGouraudShader(_NamedShader):
    """Per-vertex lighting of the nearest face: ``MeshShader("gouraud", "hard")``."""

    SHADING, BLEND = "gouraud", "hard"


class SoftGouraudShader(_NamedShader):
    """Per-vertex lighting with SoftRas blending: ``MeshShader("gouraud", "softmax")``."""

    SHADING, BLEND = "gouraud", "softmax"


class HardFlatShader(_NamedShader):
    """Per-face lighting of the nearest face: ``MeshShader("flat", "hard")``."""

    SHADING, BLEND = "flat", "hard"


class SoftSilhouetteShader(_NamedShader):
    """SoftRas silhouette in the alpha channel: ``MeshShader("silhouette", "sigmoid")``."""

    SHADING, BLEND = "silhouette", "sigmoid"


class HardDepthShader(_NamedShader):
    """Depth of the nearest face, zfar elsewhere: ``MeshShader("depth", "hard")``."""

    SHADING, BLEND = "depth", "hard"


class SoftDepthShader(_NamedShader):
    """Depth composited with SoftRas coverage: ``MeshShader("depth", "softmax")``."""

    SHADING, BLEND = "depth", "softmax"


class NormalShader(_NamedShader):
    """World normals as colours ((n + 1) / 2) of the nearest face."""

    SHADING, BLEND = "normals", "hard"


class MeshRenderer(nn.Module):
    """Rasterize then shade (PyTorch3D's ``MeshRenderer``).

    Args:
        rasterizer: a :class:`~diffrend.raster.MeshRasterizer`.
        shader: a :class:`MeshShader` (e.g. ``SoftPhongShader(...)``).
    """

    def __init__(
        self,
        rasterizer: MeshRasterizer,
        shader: MeshShader,
        max_fragment_bytes: int = 128 * 2**20,
    ) -> None:
        super().__init__()
        self.rasterizer = rasterizer
        self.shader = shader
        # forward() renders views in groups whose fragments fit this budget: a batch of
        # many views then costs no more per view than one (fresh multi-GB allocations are
        # slow), and memory stays bounded. Results and gradients are the same.
        self.max_fragment_bytes = max_fragment_bytes

    def render(
        self,
        meshes_world: Meshes,
        cameras: CamerasBase | None = None,
        lights: object | None = None,
        materials: Materials | None = None,
        blend_params: BlendParams | None = None,
        raster_settings: RasterizationSettings | None = None,
        R: torch.Tensor | None = None,
        T: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Fragments]:
        """Images and fragments, all views at once; arguments as :meth:`forward`."""
        cameras = self._cameras(cameras)
        if R is not None or T is not None:
            cameras = cameras.with_extrinsics(R=R, T=T)
        fragments = self.rasterizer(meshes_world, cameras=cameras,
                                    raster_settings=raster_settings)
        n = fragments.pix_to_face.shape[0]
        meshes = meshes_world.extend(n) if len(meshes_world) == 1 and n > 1 else meshes_world
        images = self.shader(fragments, meshes, cameras=cameras, lights=lights,
                             materials=materials, blend_params=blend_params)
        return images, fragments

    def forward(
        self,
        meshes_world: Meshes,
        cameras: CamerasBase | None = None,
        lights: object | None = None,
        materials: Materials | None = None,
        blend_params: BlendParams | None = None,
        raster_settings: RasterizationSettings | None = None,
        R: torch.Tensor | None = None,
        T: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Render (N, H, W, 4) RGBA images ((N, H, W, 1) for depth shaders).

        Args:
            meshes_world: N meshes, or one mesh drawn by all N cameras.
            cameras, lights, materials, blend_params, raster_settings: per-call overrides.
            R, T: per-call camera extrinsics (N, 3, 3) / (N, 3).
        """
        cameras = self._cameras(cameras)
        if R is not None or T is not None:
            cameras = cameras.with_extrinsics(R=R, T=T)
        n = max(len(meshes_world), len(cameras))
        group = self._views_per_group(raster_settings, meshes_world.verts_packed().dtype)
        if n <= group:
            return self.render(meshes_world, cameras, lights, materials, blend_params,
                               raster_settings)[0]
        lights = lights if lights is not None else self.shader.lights
        materials = materials if materials is not None else self.shader.materials

        def part(x, idx):  # batched things with one entry per view are split; others shared
            return x[idx] if x is not None and hasattr(x, "__len__") and len(x) == n > 1 else x

        images = []
        for start in range(0, n, group):
            idx = list(range(start, min(start + group, n)))
            images.append(self.render(part(meshes_world, idx), part(cameras, idx),
                                      part(lights, idx), part(materials, idx), blend_params,
                                      raster_settings)[0])
        return torch.cat(images)

    def _cameras(self, cameras: CamerasBase | None) -> CamerasBase:
        cameras = cameras if cameras is not None else (
            self.rasterizer.cameras if self.rasterizer.cameras is not None
            else self.shader.cameras
        )
        if cameras is None:
            raise ValueError("MeshRenderer needs cameras: give them to the rasterizer, the "
                             "shader, or the call")
        return cameras

    def _views_per_group(self, raster_settings: RasterizationSettings | None,
                         dtype: torch.dtype = torch.float32) -> int:
        """How many views forward() renders at once: their fragments (of ``dtype``, the
        vertices' dtype) fit ``max_fragment_bytes``."""
        s = raster_settings or self.rasterizer.raster_settings
        H, W = parse_image_size(s.image_size)
        # (int64 id + 5 floats per fragment: 28 bytes in float32, 48 in float64)
        per_view = H * W * s.faces_per_pixel * fragment_bytes_per_slot(dtype)
        return max(1, self.max_fragment_bytes // per_view)


class MeshRendererWithFragments(MeshRenderer):
    """Like :class:`MeshRenderer`, returning ``(images, fragments)``; arguments as
    :meth:`MeshRenderer.forward`."""

    forward = MeshRenderer.render  # type: ignore[assignment]

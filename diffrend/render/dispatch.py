"""The shading dispatch: fragments -> per (pixel, face) colours -> blended images.

A mesh shader is a shading mode (how a face is coloured at a pixel) times a blending mode
(how the K faces of a pixel become one colour). :func:`shade_fragments` is the one function
that composes them; the PyTorch3D-style shader modules (:mod:`diffrend.modules.mesh`) only
resolve their stored defaults and call it, and the gradient methods that work on a hard
render (:mod:`diffrend.gradients`) come after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..raster import Fragments
from ..shading import (
    Materials,
    depth_shading,
    flat_shading,
    gouraud_shading,
    normal_shading,
    phong_shading,
)
from .blend import (
    BlendParams,
    coverage_probability,
    hard_rgb_blend,
    sigmoid_alpha_blend,
    softmax_rgb_blend,
    softmax_rgb_blend_packed,
)
from .compact import compact_fragments, scatter_colors, visible_entries

if TYPE_CHECKING:
    from ..cameras.base import CamerasBase
    from ..structures import Meshes

__all__ = ["BLENDS", "SHADINGS", "Scene", "blend_colors", "clip_range", "depth_image",
           "shade_colors", "shade_fragments"]

SHADINGS = ("phong", "gouraud", "flat", "silhouette", "normals", "depth")
BLENDS = ("hard", "softmax", "sigmoid")


@dataclass(frozen=True)
class Scene:
    """What one call shades with: cameras (None for silhouette and normals), lights,
    materials and blend parameters."""

    cameras: CamerasBase
    lights: object
    materials: Materials
    blend_params: BlendParams


def clip_range(cameras: CamerasBase) -> tuple[float | torch.Tensor, float | torch.Tensor]:
    """(znear, zfar) of the cameras, PyTorch3D's 1 and 100 where a camera has none."""
    return getattr(cameras, "znear", 1.0), getattr(cameras, "zfar", 100.0)


def shade_colors(
    shading: str, meshes: Meshes, fragments: Fragments, scene: Scene
) -> torch.Tensor:
    """Per (pixel, face) colours (N, H, W, K, C) of a lit mode ("phong", "flat", "gouraud")
    or "normals"; :func:`shade_fragments` handles "silhouette" and "depth" itself."""
    if shading == "phong":
        texels = meshes.sample_textures(fragments)
        return phong_shading(meshes, fragments, scene.lights, scene.cameras, scene.materials,
                             texels)
    if shading == "flat":
        texels = meshes.sample_textures(fragments)
        return flat_shading(meshes, fragments, scene.lights, scene.cameras, scene.materials,
                            texels)
    if shading == "gouraud":
        return gouraud_shading(meshes, fragments, scene.lights, scene.cameras, scene.materials)
    if shading == "normals":
        # World-space normals mapped from [-1, 1] to [0, 1] so they can be looked at.
        return normal_shading(meshes, fragments) * 0.5 + 0.5
    raise ValueError(f"shade_colors takes phong, flat, gouraud or normals, got {shading!r}")


def blend_colors(
    blend: str, colors: torch.Tensor, fragments: Fragments, scene: Scene
) -> torch.Tensor:
    """Images (N, H, W, 4) from per (pixel, face) colours with one blending mode."""
    if blend == "hard":
        return hard_rgb_blend(colors, fragments, scene.blend_params)
    if blend == "sigmoid":
        return sigmoid_alpha_blend(colors, fragments, scene.blend_params)
    if blend == "softmax":
        znear, zfar = clip_range(scene.cameras)
        # Perspective cameras check 0 < znear < zfar (finite) when built: skip the per-call
        # checks, host syncs on a GPU.
        return softmax_rgb_blend(colors, fragments, scene.blend_params, znear=znear, zfar=zfar,
                                 check_clip_values=not scene.cameras.is_perspective())
    raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")


def depth_image(fragments: Fragments, scene: Scene, soft: bool) -> torch.Tensor:
    """Depth images (N, H, W, 1); background pixels get the cameras' zfar.

    Hard: the nearest face's depth. Soft: front-to-back alpha compositing of the K depths
    with SoftRas coverage probabilities ``sigmoid(-dists / sigma)``, the rest from zfar.
    Differentiable w.r.t. zbuf (and dists when soft).
    """
    _, zfar = clip_range(scene.cameras)
    zb = fragments.zbuf
    if isinstance(zfar, torch.Tensor):
        zfar = zfar.to(dtype=zb.dtype, device=zb.device).reshape(-1, 1, 1, 1)
    else:  # filled on the device: as_tensor would copy from the host (a CUDA sync)
        zfar = torch.full((1, 1, 1, 1), float(zfar), dtype=zb.dtype, device=zb.device)
    z = depth_shading(fragments)[..., 0]  # (N, H, W, K)
    mask = fragments.pix_to_face >= 0
    if not soft:
        return torch.where(mask[..., :1], z[..., :1], zfar.expand_as(z[..., :1]))
    prob = coverage_probability(fragments, scene.blend_params)
    # weight of face k: prob_k * prod_{j<k} (1 - prob_j)
    keep = torch.cumprod(torch.cat((torch.ones_like(prob[..., :1]), 1 - prob[..., :-1]), -1),
                         dim=-1)
    w = prob * keep
    rest = 1 - w.sum(-1, keepdim=True)
    return (w * torch.where(mask, z, torch.zeros_like(z))).sum(-1, keepdim=True) + rest * zfar




def shade_fragments(
    shading: str, blend: str, fragments: Fragments, meshes: Meshes, scene: Scene
) -> torch.Tensor:
    """Images from fragments: ``shading`` per (pixel, face), then ``blend`` over the K faces.

    Args:
        shading: one of :data:`SHADINGS`.
        blend: one of :data:`BLENDS`; for "depth", "hard" gives the nearest depth and
            anything else soft depth.
        fragments: (N, H, W, K) fragments of ``meshes``.
        meshes: the N meshes that were rasterized.
        scene: cameras, lights, materials and blend parameters of the call.

    Returns:
        (N, H, W, 4) RGBA images ((N, H, W, 1) for depth), differentiable w.r.t. the scene
        tensors that reach them (vertices, textures, lights, materials, cameras); not
        w.r.t. which faces cover a pixel (see :mod:`diffrend.gradients` for that).

    Raises:
        ValueError: unknown shading or blend.
    """
    if shading not in SHADINGS:
        raise ValueError(f"shading must be one of {SHADINGS}, got {shading!r}")
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    if shading == "depth":
        return depth_image(fragments, scene, soft=blend != "hard")
    if shading == "silhouette":  # no shading; a broadcast view, not (N,H,W,K,3) ones
        b = fragments.bary_coords
        colors = torch.ones((), dtype=b.dtype, device=b.device).expand(b.shape)
    else:
        # Shade only what the blending reads (see diffrend/render/compact.py).
        znear, zfar = clip_range(scene.cameras)
        keep = visible_entries(blend, fragments, scene.blend_params.gamma, znear, zfar)
        compact, where = compact_fragments(fragments, keep)
        colors = shade_colors(shading, meshes, compact, scene)
        if blend == "softmax":  # the blend reads the packed colours (no dense copy)
            return softmax_rgb_blend_packed(
                colors, keep, where, fragments, scene.blend_params, znear=znear, zfar=zfar,
                check_clip_values=not scene.cameras.is_perspective())
        colors = scatter_colors(colors, where, tuple(fragments.pix_to_face.shape))
    return blend_colors(blend, colors, fragments, scene)

"""The gradient methods behind one switch: which one a shader uses, its edge pass, and
silhouettes rendered with any of them (functions over fragments; no module layer).

``render_silhouette(meshes, cameras, image_size, method)`` gives the same kind of image with
different gradients at the outline:

- ``"soft"``: SoftRas (PyTorch3D's ``SoftSilhouetteShader``): every face within the blur
  radius of a pixel adds a sigmoid probability of covering it, aggregated as
  ``1 - prod(1 - D)``; the forward image is blurred, the gradient reaches ~blur radius
  away from the outline.
- ``"hard"``: the hard silhouette; zero gradient w.r.t. the geometry (the baseline that shows
  the problem).
- ``"antialias"``: the hard silhouette antialiased analytically at its edges
  (:func:`~diffrend.gradients.antialias`); gradient at the outline pixels only.
- ``"nmr"``: the hard silhouette with Neural Mesh Renderer's backward pass
  (:mod:`~diffrend.gradients.nmr`): slopes of the steps an edge makes as it sweeps along
  pixel rows and columns, where they would lower the loss.
- ``"opendr"``: the hard silhouette with OpenDR's backward pass
  (:mod:`~diffrend.gradients.opendr`): image-space central differences at the boundary
  times the screen motion of the surface point at each pixel.
"""

from __future__ import annotations

import math

import torch

from ..cameras import CamerasBase
from ..raster import Fragments, MeshRasterizer, RasterizationSettings
from ..render.blend import BlendParams
from ..render.dispatch import Scene, shade_fragments
from ..structures import Meshes
from .antialias import antialias_render
from .nmr import nmr_render
from .opendr import opendr_render

# How edge pixels get gradients (docs/gradients.md): SoftRas blending, none, or an edge
# pass after a hard blend.
METHODS = ("soft", "hard", "antialias", "nmr", "opendr")


def check_gradient_method(shading: str, blend: str, method: str | None) -> str:
    """The gradient method of a shader (None: what the blend implies), checked against it.

    Returns:
        One of :data:`METHODS`: "soft" for the SoftRas blends; "hard", "antialias", "nmr" or
        "opendr" with ``blend="hard"``.

    Raises:
        ValueError: an unknown method, or one that does not fit the blend or the shading.
    """
    soft = blend != "hard"
    if method is None:
        return "soft" if soft else "hard"
    if method not in METHODS:
        raise ValueError(f"gradient_method must be one of {METHODS}, got {method!r}")
    if soft and method != "soft":
        raise ValueError(f"gradient_method={method!r} needs blend='hard' (it works on a hard "
                         f"render); blend={blend!r} is SoftRas, gradient_method='soft'")
    if not soft and method == "soft":
        raise ValueError("gradient_method='soft' needs a SoftRas blend ('softmax' or "
                         "'sigmoid'), e.g. SoftPhongShader / SoftSilhouetteShader")
    if shading == "depth" and method not in ("soft", "hard"):
        raise ValueError(f"gradient_method={method!r} is not available for depth shading")
    return method


def edge_gradient(
    method: str, images: torch.Tensor, fragments: Fragments, meshes: Meshes,
    cameras: CamerasBase,
) -> torch.Tensor:
    """Hard-blended images (N, H, W, C) with the edge gradient of ``method`` added.

    "hard" returns them unchanged; "antialias" blends across silhouette edges (forward
    changes, nvdiffrast); "nmr" and "opendr" keep the forward image and add their backward
    rules (:mod:`diffrend.gradients`). Differentiable w.r.t. the images and, except for
    "hard", the vertices and cameras.
    """
    if method == "hard":
        return images
    edge = {"antialias": antialias_render, "nmr": nmr_render, "opendr": opendr_render}
    if method not in edge:
        raise ValueError(f"gradient_method must be one of {METHODS}, got {method!r}")
    return edge[method](images, fragments, meshes, cameras)


def render_silhouette(
    meshes: Meshes,
    cameras: CamerasBase,
    image_size: int,
    method: str,
    sigma: float = 1e-4,
    faces_per_pixel: int = 50,
) -> torch.Tensor:
    """Silhouettes of ``meshes`` seen by ``cameras`` with the gradient ``method``.

    Args:
        meshes: N meshes, or one mesh for all N cameras.
        cameras: N cameras (differentiable parameters welcome).
        image_size: side of the square images.
        method: one of :data:`METHODS`.
        sigma: SoftRas sharpness (``"soft"`` only; its blur radius follows PyTorch3D's
            ``sigma * log(1 / sigma - 1)``).
        faces_per_pixel: K of the soft rasterizer (``"soft"`` only).

    Returns:
        (N, S, S) silhouettes in [0, 1]; differentiable w.r.t. vertices and cameras as the
        method allows (``"hard"``: not at all).

    Raises:
        ValueError: unknown method, sigma outside (0, 0.5), K < 1.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0.0 < sigma < 0.5:
        raise ValueError(f"sigma must be in (0, 0.5), got {sigma}")
    if not isinstance(faces_per_pixel, int) or faces_per_pixel < 1:
        raise ValueError(f"faces_per_pixel must be an int >= 1, got {faces_per_pixel!r}")
    n = len(cameras)
    if len(meshes) == 1 and n > 1:
        meshes = meshes.extend(n)
    if method == "soft":
        settings = RasterizationSettings(image_size=image_size,
                                         blur_radius=math.log(1.0 / sigma - 1.0) * sigma,
                                         faces_per_pixel=faces_per_pixel)
        fragments = MeshRasterizer(raster_settings=settings)(meshes, cameras=cameras)
        scene = Scene(cameras, None, None, BlendParams(sigma=sigma, gamma=1e-4))
        return shade_fragments("silhouette", "sigmoid", fragments, meshes, scene)[..., 3]
    fragments = MeshRasterizer(raster_settings=RasterizationSettings(image_size=image_size))(
        meshes, cameras=cameras)
    images = shade_fragments("silhouette", "hard", fragments, meshes,
                             Scene(cameras, None, None, BlendParams()))
    return edge_gradient(method, images, fragments, meshes, cameras)[..., 3]


@torch.no_grad()
def supersampled_silhouette(
    meshes: Meshes, cameras: CamerasBase, image_size: int, factor: int = 16,
    batch_views: int = 4,
) -> torch.Tensor:
    """Pixel coverage (N, S, S) estimated with ``factor x factor`` samples per pixel.

    The ground truth the gradient methods are measured against (a hard render at
    ``factor`` times the size, averaged over each pixel's block). No gradients.
    """
    if not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be an int >= 1, got {factor!r}")
    n = len(cameras)
    if len(meshes) == 1 and n > 1:
        meshes = meshes.extend(n)
    big = image_size * factor
    rasterizer = MeshRasterizer(raster_settings=RasterizationSettings(image_size=big))
    out = []
    for start in range(0, n, batch_views):
        idx = list(range(start, min(start + batch_views, n)))
        p2f = rasterizer(meshes[idx], cameras=cameras[idx]).pix_to_face[..., 0]
        cover = (p2f >= 0).float().reshape(len(idx), image_size, factor, image_size, factor)
        out.append(cover.mean(dim=(2, 4)))
    return torch.cat(out)

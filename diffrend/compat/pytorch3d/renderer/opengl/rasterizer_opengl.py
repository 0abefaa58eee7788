"""``pytorch3d.renderer.opengl.rasterizer_opengl``: the OpenGL rasterizer's contract.

PyTorch3D rasterizes with OpenGL (EGL + pycuda, CUDA only). diffrend gives the same
results from its software rasterizer: ``pix_to_face``, ``bary_coords`` (perspective-correct)
and ``zbuf`` (view depth) of the nearest face, K = 1; faces clipped at the camera's near
plane and pixels whose nearest face is beyond the far plane left empty, as OpenGL's
clipping does; ``dists`` is None and the fragments are detached, as the OpenGL ones are.
Unlike PyTorch3D's, it runs on the CPU too. Only FoV cameras are accepted (OpenGL's
projection), as in PyTorch3D.
"""

from __future__ import annotations

import os
import warnings

import torch

from diffrend.cameras import FoVOrthographicCameras, FoVPerspectiveCameras
from diffrend.raster import (
    Fragments,
    RasterizationSettings,
    parse_image_size,
    rasterize_meshes,
)
from diffrend.structures import Meshes

from ..mesh.rasterizer import MeshRasterizer, _rasterizer_keywords

# PyTorch3D's EGL buffer limits, overridable by the same environment variables.
_MAX_HEIGHT = int(os.environ.get("MAX_EGL_HEIGHT", 2048))
_MAX_WIDTH = int(os.environ.get("MAX_EGL_WIDTH", 2048))


def _parse_and_verify_image_size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """(H, W) from an int or pair; ValueError beyond the EGL size limit (2048 by default)."""
    height, width = parse_image_size(image_size)
    if height > _MAX_HEIGHT or width > _MAX_WIDTH:
        raise ValueError(
            f"Max rasterization size is height={_MAX_HEIGHT}, width={_MAX_WIDTH}; cannot "
            f"raster an image of size {height}, {width} (set MAX_EGL_HEIGHT / MAX_EGL_WIDTH)"
        )
    return height, width


def _check_cameras(cameras) -> None:
    """ValueError unless ``cameras`` is given and is an OpenGL-style FoV camera."""
    if cameras is None:
        raise ValueError(
            "Cameras must be specified either at initialization or in the forward pass of "
            "MeshRasterizerOpenGL"
        )
    if not isinstance(cameras, (FoVPerspectiveCameras, FoVOrthographicCameras)):
        raise ValueError(
            "MeshRasterizerOpenGL only works with FoVPerspectiveCameras and "
            f"FoVOrthographicCameras, which are OpenGL compatible; got {type(cameras).__name__}"
        )


def _check_raster_settings(raster_settings: RasterizationSettings) -> None:
    """Warn about settings the OpenGL rasterizer ignores; raise on those it cannot honour."""
    if raster_settings.faces_per_pixel > 1:
        warnings.warn(
            "MeshRasterizerOpenGL currently works only with one face per pixel.", stacklevel=3
        )
    if raster_settings.cull_backfaces:
        warnings.warn(
            "MeshRasterizerOpenGL cannot cull backfaces, rasterizing without culling.",
            stacklevel=3,
        )
    if raster_settings.cull_to_frustum:
        warnings.warn(
            "MeshRasterizerOpenGL cannot cull to frustum, rasterizing without culling.",
            stacklevel=3,
        )
    if raster_settings.z_clip_value is not None:
        raise NotImplementedError("MeshRasterizerOpenGL cannot do z-clipping.")
    if raster_settings.perspective_correct is False:
        raise ValueError("MeshRasterizerOpenGL always uses perspective-correct interpolation.")


def _convert_meshes_to_gl_ndc(
    meshes_world: Meshes,
    image_size: tuple[int, int],
    camera: FoVPerspectiveCameras | FoVOrthographicCameras,
    R: torch.Tensor | None = None,
    T: torch.Tensor | None = None,
) -> Meshes:
    """World-space meshes in OpenGL's NDC: x and y flipped, the longer side squeezed to [-1, 1].

    Args:
        meshes_world: ``Meshes`` in world space.
        image_size: (H, W).
        camera: FoV cameras; ``R``/``T`` override their extrinsics.

    Returns:
        ``Meshes`` whose vertices are in OpenGL NDC (z is the camera's NDC depth);
        differentiable w.r.t. the vertices and the camera.
    """
    height, width = image_size
    verts = (
        camera.get_world_to_view_transform(R=R, T=T)
        .compose(camera.get_ndc_camera_transform(R=R, T=T))
        .transform_points(meshes_world.verts_padded(), eps=None)
    )
    scale = [-1.0, -1.0, 1.0]
    if height > width:
        scale[1] *= width / height
    elif width > height:
        scale[0] *= height / width
    verts = verts * torch.tensor(scale, dtype=verts.dtype, device=verts.device)
    return meshes_world.update_padded(verts)


# in sub-pixel steps; |y| << |x| / (edge length in steps), so no edge can balance the two
_TIE_SHIFT = (1e-4, 1e-10)


def _snap_to_subpixels(meshes_ndc: Meshes, image_size: tuple[int, int]) -> Meshes:
    """Float64 vertices with x, y snapped to OpenGL's sub-pixel grid (1/256 pixel).

    OpenGL rasterizes vertices in fixed point, which decides the pixels whose centres lie a
    hair from a silhouette edge; PyTorch3D's OpenGL reference images follow it. After
    snapping, pixel centres can lie exactly on edges; OpenGL's fill rule gives such a pixel
    to exactly one of the faces sharing the edge. The tiny shift (far below the grid, two
    very different amounts in x and y, exact in float64) does the same: no centre stays on an
    edge, so no pixel falls through the crack between two faces.
    """
    steps = min(image_size) * 128.0  # NDC spans min(H, W) pixels over 2 units, 256 steps each
    verts = meshes_ndc.verts_padded().double()
    xy = torch.round(verts[..., :2] * steps) / steps
    xy = xy + torch.tensor(_TIE_SHIFT, dtype=xy.dtype, device=xy.device) / steps
    return meshes_ndc.update_padded(torch.cat((xy, verts[..., 2:]), dim=-1))


class MeshRasterizerOpenGL(MeshRasterizer):
    """PyTorch3D's OpenGL rasterizer, as diffrend's software rasterizer with its contract.

    Args:
        cameras: ``FoVPerspectiveCameras`` or ``FoVOrthographicCameras`` (or None to give
            them at call time).
        raster_settings: :class:`RasterizationSettings`; ``faces_per_pixel`` > 1,
            ``cull_backfaces`` and ``cull_to_frustum`` warn and are ignored,
            ``z_clip_value`` and ``perspective_correct=False`` raise, ``blur_radius`` is
            ignored (OpenGL rasterizes hard).
    """

    def __init__(
        self,
        cameras: FoVPerspectiveCameras | FoVOrthographicCameras | None = None,
        raster_settings: RasterizationSettings | None = None,
    ) -> None:
        super().__init__(cameras=cameras, raster_settings=raster_settings)
        _check_raster_settings(self.raster_settings)
        self.image_size = _parse_and_verify_image_size(self.raster_settings.image_size)

    def forward(self, meshes_world: Meshes, **kwargs) -> Fragments:
        """Rasterize the nearest face per pixel.

        Args:
            meshes_world: ``Meshes`` (N or 1) in world space.
            kwargs: ``cameras``, ``raster_settings`` override the stored ones; ``R``, ``T``
                are stored on the cameras; other keywords are ignored, as PyTorch3D does.

        Returns:
            :class:`Fragments` with (N, H, W, 1) ``pix_to_face`` and ``zbuf``, (N, H, W, 1, 3)
            ``bary_coords`` and ``dists=None``; detached (not differentiable), as
            PyTorch3D's OpenGL fragments are. Empty pixels hold -1.
        """
        kw = _rasterizer_keywords(kwargs, self.cameras)
        settings = kw.get("raster_settings") or self.raster_settings
        _check_raster_settings(settings)
        image_size = _parse_and_verify_image_size(settings.image_size)
        cameras = kw.get("cameras") if kw.get("cameras") is not None else self.cameras
        _check_cameras(cameras)
        znear = torch.as_tensor(cameras.get_znear()).detach().min()
        with torch.no_grad():
            meshes_ndc = self.transform(meshes_world, cameras)
            frags = rasterize_meshes(
                _snap_to_subpixels(meshes_ndc, image_size), image_size=image_size,
                faces_per_pixel=1, perspective_correct=True, z_clip_value=float(znear),
                backend=settings.backend,
            )
            dtype = meshes_ndc.verts_padded().dtype
            pix_to_face = frags.pix_to_face
            zbuf, bary = frags.zbuf.to(dtype), frags.bary_coords.to(dtype)
            # OpenGL clips at the far plane too: a pixel whose nearest face lies beyond it
            # shows nothing (every face behind is farther still).
            zfar = torch.as_tensor(cameras.zfar, dtype=zbuf.dtype,
                                   device=zbuf.device).reshape(-1, 1, 1, 1)
            beyond = (pix_to_face >= 0) & (zbuf > zfar)
            pix_to_face = pix_to_face.masked_fill(beyond, -1)
            zbuf = zbuf.masked_fill(beyond, -1.0)
            bary = bary.masked_fill(beyond[..., None], -1.0)
        return Fragments(pix_to_face=pix_to_face, zbuf=zbuf, bary_coords=bary, dists=None)


__all__ = ["MeshRasterizerOpenGL"]

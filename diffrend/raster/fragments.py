"""Result and settings records of mesh and points rasterization (PyTorch3D's names and
defaults), and the kernels' output buffers."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass(frozen=True)
class Fragments:
    """What the rasterizer found at each pixel, nearest face first.

    Attributes:
        pix_to_face: (N, H, W, K) int64 index into ``meshes.faces_packed()``; -1 where fewer
            than K faces cover the pixel. Not differentiable.
        zbuf: (N, H, W, K) view-space depth of the face at the pixel centre; -1 where empty.
            Differentiable w.r.t. the vertex positions.
        bary_coords: (N, H, W, K, 3) barycentric coordinates of the pixel centre in the face
            (perspective-corrected and/or clipped as requested); -1 where empty.
            Differentiable w.r.t. the vertex positions.
        dists: (N, H, W, K) signed squared distance in NDC from the pixel centre to the face's
            2D triangle, negative inside; -1 where empty. Differentiable w.r.t. the vertex
            positions (x and y).
    """

    pix_to_face: torch.Tensor
    zbuf: torch.Tensor
    bary_coords: torch.Tensor
    dists: torch.Tensor | None

    def __iter__(self):
        # Allows ``pix_to_face, zbuf, bary, dists = fragments`` like PyTorch3D's namedtuple.
        return iter(getattr(self, f.name) for f in fields(self))

    def detach(self) -> Fragments:
        """A copy whose tensors are detached from the autograd graph."""
        return Fragments(*(t.detach() if t is not None else None for t in self))


# Settings records are mutable, as PyTorch3D's are (``settings.blur_radius = 1e-4`` between
# calls is common in its users' code); each call reads them afresh.
@dataclass
class RasterizationSettings:
    """Settings of :func:`diffrend.rasterize_meshes`, with PyTorch3D's names and defaults.

    Attributes:
        image_size: int for a square image, or (H, W).
        blur_radius: squared NDC distance within which a face outside a pixel still counts
            (SoftRas: ``log(1/eps - 1) * sigma``). >= 0.
        faces_per_pixel: K, how many nearest faces to keep per pixel. >= 1, no upper cap.
        bin_size, max_faces_per_bin: accepted for PyTorch3D compatibility; diffrend's binning
            sizes itself exactly (it counts before it fills), so these only affect speed.
        perspective_correct: None = follow the camera (``cameras.is_perspective()``).
        clip_barycentric_coords: None = clip when ``blur_radius > 0``.
        cull_backfaces: skip faces whose screen-space winding is clockwise seen from the camera.
        z_clip_value: clip faces against the plane z = z_clip_value (view depth) before
            rasterizing; None = ``znear / 2`` for perspective cameras that have a znear.
        cull_to_frustum: drop faces entirely outside the view frustum.
        backend: "auto" (Numba on CPU, Triton on CUDA when installed, reference elsewhere),
            "numba", "triton" or "reference".
        max_faces_opengl: accepted for PyTorch3D compatibility (its OpenGL rasterizer's
            buffer size); diffrend's rasterizers have no such limit.
    """

    image_size: int | tuple[int, int] = 256
    blur_radius: float = 0.0
    faces_per_pixel: int = 1
    bin_size: int | None = None
    max_faces_per_bin: int | None = None
    perspective_correct: bool | None = None
    clip_barycentric_coords: bool | None = None
    cull_backfaces: bool = False
    z_clip_value: float | None = None
    cull_to_frustum: bool = False
    backend: str = "auto"
    max_faces_opengl: int = 10_000_000


@dataclass(frozen=True)
class RasterParams:
    """The plain parameter record every rasterizer backend takes (resolved, validated).

    Attributes:
        image_size: (H, W).
        blur_radius: squared NDC distance, >= 0.
        faces_per_pixel: K >= 1.
        perspective_correct, clip_barycentric_coords, cull_backfaces: as in
            :func:`diffrend.rasterize_meshes`.
    """

    image_size: tuple[int, int]
    blur_radius: float
    faces_per_pixel: int
    perspective_correct: bool
    clip_barycentric_coords: bool
    cull_backfaces: bool


@dataclass(frozen=True)
class PointFragments:
    """What the points rasterizer found at each pixel, nearest point first.

    Attributes:
        idx: (N, H, W, K) int32 (as PyTorch3D's) index into ``pointclouds.points_packed()``
            of the K points nearest in depth whose disc covers the pixel centre; -1 where
            fewer than K. Not differentiable.
        zbuf: (N, H, W, K) view-space depth (z) of each listed point; -1 where empty.
            Differentiable w.r.t. the points' z.
        dists: (N, H, W, K) squared NDC distance from the pixel centre to the point's (x, y);
            -1 where empty. Differentiable w.r.t. the points' x and y.
    """

    idx: torch.Tensor
    zbuf: torch.Tensor
    dists: torch.Tensor

    def __iter__(self):
        # Allows ``idx, zbuf, dists = fragments`` like PyTorch3D's namedtuple.
        return iter(getattr(self, f.name) for f in fields(self))

    def detach(self) -> PointFragments:
        """A copy whose tensors are detached from the autograd graph."""
        return PointFragments(*(t.detach() for t in self))


@dataclass
class PointsRasterizationSettings:
    """Settings of :func:`diffrend.rasterize_points`, with PyTorch3D's names and defaults.

    Attributes:
        image_size: int for a square image, or (H, W).
        radius: the points' disc radius in NDC units (a point covers a pixel centre when the
            squared distance is < radius**2): a float, a (sum P_i,) tensor (one per packed
            point) or PyTorch3D's (N, max P_i) padded tensor. >= 0.
        points_per_pixel: K, how many points nearest in depth to keep per pixel. >= 1.
        bin_size, max_points_per_bin: accepted for PyTorch3D compatibility and ignored:
            diffrend's binning sizes itself exactly (it counts before it fills).
        backend: "auto" (Numba on CPU, Triton on CUDA when installed, the reference
            elsewhere), "numba", "triton" or "reference".
    """

    image_size: int | tuple[int, int] = 256
    radius: float | torch.Tensor = 0.01
    points_per_pixel: int = 8
    bin_size: int | None = None
    max_points_per_bin: int | None = None
    backend: str = "auto"


@dataclass(frozen=True)
class PointsRasterParams:
    """The plain parameter record every points rasterizer backend takes (validated).

    Attributes:
        image_size: (H, W).
        points_per_pixel: K >= 1.
    """

    image_size: tuple[int, int]
    points_per_pixel: int


def empty_fragment_buffers(
    n: int, height: int, width: int, k: int, dtype: torch.dtype,
    device: torch.device | str = "cpu", bary: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Uninitialised output buffers of a kernel, in the order it returns them.

    Returns:
        index (N, H, W, K) int64, zbuf (N, H, W, K), [bary_coords (N, H, W, K, 3) when
        ``bary``,] dists (N, H, W, K), the floats in ``dtype``.
    """
    shape = (n, height, width, k)
    index = torch.empty(shape, dtype=torch.int64, device=device)
    zbuf = torch.empty(shape, dtype=dtype, device=device)
    dists = torch.empty(shape, dtype=dtype, device=device)
    if bary:
        return index, zbuf, torch.empty((*shape, 3), dtype=dtype, device=device), dists
    return index, zbuf, dists

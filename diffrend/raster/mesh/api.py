"""Public mesh rasterization functions: argument checks, clipping, backend dispatch, autograd.

``rasterize_faces`` is the functional core over plain tensors; ``rasterize_meshes`` is the
PyTorch3D-compatible entry point taking a ``Meshes`` already in NDC space.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from ..backends import (
    KernelRasterize,
    check_backend_name,
    check_per_pixel,
    kernel_module,
    parse_image_size,
    resolve_backend,
)
from ..clip import clip_faces, unclip_fragments
from ..fragments import Fragments, RasterParams
from ..gather import gather_face_verts
from ..memory import check_fragment_memory
from ..tiles import ndc_extent
from . import reference

if TYPE_CHECKING:
    from ...structures import Meshes


def _check_settings(blur_radius: float, faces_per_pixel: int, backend: str) -> None:
    if not isinstance(blur_radius, (int, float)) or not math.isfinite(blur_radius):
        raise ValueError(f"blur_radius must be a finite number, got {blur_radius!r}")
    if blur_radius < 0:
        raise ValueError(f"blur_radius must be >= 0, got {blur_radius}")
    check_per_pixel(faces_per_pixel, "faces_per_pixel")
    check_backend_name(backend)


def rasterize_faces(
    face_verts: torch.Tensor,
    face_mesh: torch.Tensor,
    n_meshes: int,
    image_size: int | tuple[int, int] = 256,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 1,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: float | torch.Tensor | None = None,
    cull_to_frustum: bool = False,
    backend: str = "auto",
) -> Fragments:
    """Rasterize screen-space triangles (the functional core).

    Args:
        face_verts: (F, 3, 3) float faces; x, y in NDC (+X left, +Y up), z the view depth.
        face_mesh: (F,) int64 index of the image each face is drawn into (-1 = none).
        n_meshes: N, the number of images.
        image_size: int or (H, W).
        blur_radius: squared NDC distance within which faces outside a pixel count (>= 0).
        faces_per_pixel: K >= 1 (no upper cap).
        perspective_correct: correct barycentrics for perspective (needs z > 0).
        clip_barycentric_coords: clamp barycentrics to [0, 1] and renormalise (for blur).
        cull_backfaces: skip faces that are clockwise on screen.
        z_clip_value: clip faces to z >= z_clip_value first: a number, a 0-dim tensor (on
            CUDA read together with the depths, in one host sync) or None (no clipping; faces with
            any vertex at z < 1e-8 are then skipped, as in PyTorch3D).
        cull_to_frustum: skip faces entirely outside the image.
        backend: "auto" (Numba for CPU tensors, Triton for CUDA tensors when triton is
            installed, the reference elsewhere), "numba", "triton" (CUDA tensors; CPU tensors
            only under ``TRITON_INTERPRET=1``) or "reference".

    Returns:
        :class:`Fragments` with (N, H, W, K) tensors; zbuf, bary_coords and dists are
        differentiable w.r.t. ``face_verts``; pix_to_face is not.

    Raises:
        ValueError: bad settings or shapes, or NaN/inf in ``face_verts`` (every backend).
    """
    H, W = parse_image_size(image_size)
    _check_settings(blur_radius, faces_per_pixel, backend)
    if face_verts.ndim != 3 or face_verts.shape[1:] != (3, 3):
        raise ValueError(f"face_verts must have shape (F, 3, 3), got {tuple(face_verts.shape)}")
    if not face_verts.is_floating_point():
        raise ValueError(f"face_verts must be a float tensor, got {face_verts.dtype}")
    if face_mesh.shape != face_verts.shape[:1]:
        raise ValueError(
            f"face_mesh must have shape ({face_verts.shape[0]},), got {tuple(face_mesh.shape)}"
        )
    if torch.is_tensor(z_clip_value):
        # (its value is checked by clip_faces, in the same host read as the depths)
        if z_clip_value.ndim != 0 or not z_clip_value.is_floating_point():
            raise ValueError(f"z_clip_value as a tensor must be a 0-dim float tensor, got "
                             f"shape {tuple(z_clip_value.shape)} {z_clip_value.dtype}")
    elif z_clip_value is not None and not (
        isinstance(z_clip_value, (int, float)) and math.isfinite(z_clip_value)
        and z_clip_value > 0
    ):
        raise ValueError(f"z_clip_value must be a positive number or None, got {z_clip_value}")
    face_mesh = face_mesh.to(device=face_verts.device, dtype=torch.int64)
    clipped = clip_faces(
        face_verts, face_mesh, z_clip_value, perspective_correct,
        ndc_extent(H, W) if cull_to_frustum else None,
    )
    backend = resolve_backend(backend, face_verts.device)
    # Before any (N, H, W, K) allocation: a clear error instead of running out inside a kernel.
    check_fragment_memory(n_meshes, H, W, faces_per_pixel, face_verts.dtype, face_verts.device,
                          "mesh", backward=torch.is_grad_enabled() and face_verts.requires_grad,
                          clipped=clipped.to_original is not None)
    params = RasterParams(
        (H, W), float(blur_radius), faces_per_pixel, bool(perspective_correct),
        bool(clip_barycentric_coords), bool(cull_backfaces),
    )
    args = (clipped.face_verts, clipped.face_mesh, n_meshes, clipped.neighbor, params)
    if backend == "reference":
        if not bool(torch.isfinite(clipped.face_verts).all()):
            raise ValueError("face_verts has NaN or inf coordinates (check the vertices and "
                             "the camera)")
        p2f, zbuf, bary, dists = reference.rasterize_reference(*args)
    else:
        # (Numba's first pass, or Triton's binning in its one host sync, raises on NaN/inf
        # coordinates, saving a pass here)
        p2f, zbuf, bary, dists = KernelRasterize.apply(kernel_module("mesh", backend), *args)
    p2f, bary = unclip_fragments(clipped, p2f, bary)
    return Fragments(pix_to_face=p2f, zbuf=zbuf, bary_coords=bary, dists=dists)


def rasterize_meshes(
    meshes: Meshes,
    image_size: int | tuple[int, int] = 256,
    blur_radius: float = 0.0,
    faces_per_pixel: int = 8,
    bin_size: int | None = None,
    max_faces_per_bin: int | None = None,
    perspective_correct: bool = False,
    clip_barycentric_coords: bool = False,
    cull_backfaces: bool = False,
    z_clip_value: float | torch.Tensor | None = None,
    cull_to_frustum: bool = False,
    backend: str = "auto",
) -> Fragments:
    """Rasterize a batch of meshes whose vertices are already in NDC (PyTorch3D's signature).

    Args:
        meshes: ``Meshes`` of N meshes; vertex x, y in NDC, z the view depth (what
            ``MeshRasterizer.transform`` produces).
        bin_size, max_faces_per_bin: accepted for compatibility and ignored: binning here
            counts before it fills, so it never runs out of room.
        The other arguments are those of :func:`rasterize_faces`.

    Returns:
        :class:`Fragments`; pix_to_face indexes ``meshes.faces_packed()``. zbuf, bary_coords
        and dists are differentiable w.r.t. the vertex positions.
    """
    del bin_size, max_faces_per_bin
    verts = meshes.verts_packed()
    faces = meshes.faces_packed()
    face_verts = gather_face_verts(verts, faces)
    return rasterize_faces(
        face_verts,
        meshes.faces_packed_to_mesh_idx(),
        len(meshes),
        image_size=image_size,
        blur_radius=blur_radius,
        faces_per_pixel=faces_per_pixel,
        perspective_correct=perspective_correct,
        clip_barycentric_coords=clip_barycentric_coords,
        cull_backfaces=cull_backfaces,
        z_clip_value=z_clip_value,
        cull_to_frustum=cull_to_frustum,
        backend=backend,
    )

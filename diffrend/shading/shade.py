"""Shading functions: per-pixel colours from fragments, lights, cameras and materials.

PyTorch3D's shading models as plain functions over tensors (the shader modules only call
them). Every function returns ``(N, H, W, K, C)``: one colour per pixel and per face slot k,
blended later. Positions, normals and camera centres are in world space.

Gradients: everything is ordinary torch, differentiable w.r.t. the vertex positions (through
positions, normals and ``fragments.bary_coords``/``zbuf``), the light and material tensors,
the camera parameters (through the camera centre) and the texels / vertex colours. Not
w.r.t. ``fragments.pix_to_face`` (an index).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .interpolate import interpolate_face_attributes
from .lights import AmbientLights, DirectionalLights, PointLights, _batch_view
from .materials import Materials

if TYPE_CHECKING:
    from ..cameras.base import CamerasBase
    from ..raster.fragments import Fragments
    from ..structures import Meshes

Lights = PointLights | DirectionalLights | AmbientLights


def _check_fragments(meshes: Meshes, fragments: Fragments) -> None:
    p2f = fragments.pix_to_face
    if not torch.is_tensor(p2f) or p2f.ndim != 4:
        raise ValueError("fragments.pix_to_face must be a tensor (N, H, W, K)")
    if p2f.shape[0] != len(meshes):
        raise ValueError(
            f"fragments has {p2f.shape[0]} images but meshes has {len(meshes)} meshes: "
            "pix_to_face indexes the packed faces of the meshes that were rasterized "
            "(extend the meshes to one per camera first)"
        )


def _check_texels(texels: torch.Tensor, fragments: Fragments) -> None:
    shape = tuple(fragments.pix_to_face.shape)
    if not torch.is_tensor(texels) or texels.ndim != 5 or tuple(texels.shape[:4]) != shape:
        got = tuple(texels.shape) if torch.is_tensor(texels) else type(texels).__name__
        raise ValueError(f"texels must have shape {(*shape, 'C')}, got {got}")


def _apply_lighting(
    points: torch.Tensor,
    normals: torch.Tensor,
    lights: Lights,
    cameras: CamerasBase,
    materials: Materials,
    batch_idx: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ambient, diffuse and specular colour at points, materials times lights.

    Args:
        points: (B, ..., 3) world positions: (N, H, W, K, 3) per pixel, or (P, 3) packed.
        normals: same shape as ``points``; need not be unit length (zero = unlit).
        lights, materials: batch size 1 or B (or N when ``batch_idx`` is given).
        cameras: batch size 1 or B (or N); ``get_camera_center()`` gives the view point.
        batch_idx: optional (P,) image index of each packed point; lights, materials and
            camera centres with batch size > 1 are then gathered per point.

    Returns:
        ``(ambient, diffuse, specular)``: ambient ``(B', 1, ..., 1, C)`` (as many dims as
        ``points``), diffuse and specular ``(B', ..., C)``, with B' the broadcast batch size.
        Differentiable w.r.t. points, normals, the light and material tensors and the
        cameras.
    """
    if not torch.is_tensor(points) or points.ndim < 2 or points.shape[-1] != 3:
        raise ValueError("points must be a tensor (B, ..., 3)")
    if not torch.is_tensor(normals) or normals.shape != points.shape:
        raise ValueError(
            f"normals must have the shape of points {tuple(points.shape)}, got "
            f"{tuple(normals.shape) if torch.is_tensor(normals) else type(normals).__name__}"
        )
    camera_position = cameras.get_camera_center()  # (C, 3)
    if batch_idx is not None:
        packed = points.ndim == 2 and torch.is_tensor(batch_idx)
        if not packed or batch_idx.shape != points.shape[:1]:
            raise ValueError("batch_idx must be (P,) for packed points (P, 3)")
        lights = lights.gather_props(batch_idx)
        materials = materials.gather_props(batch_idx)
        if camera_position.shape[0] > 1:
            camera_position = camera_position[batch_idx.to(camera_position.device)]
    camera_position = _batch_view(camera_position, points, 1, "cameras (camera centres)")
    shininess = _batch_view(materials.shininess, points[..., 0], 0, "materials.shininess")
    both = getattr(lights, "diffuse_and_specular", None)  # one pass where the lights have it
    if both is not None:
        light_diffuse, light_specular = both(
            normals=normals, points=points, camera_position=camera_position, shininess=shininess
        )
    else:
        light_diffuse = lights.diffuse(normals=normals, points=points)
        light_specular = lights.specular(
            normals=normals,
            points=points,
            camera_position=camera_position,
            shininess=shininess,
        )
    mat_ambient = _batch_view(materials.ambient_color, points, 1, "materials.ambient_color")
    light_ambient = _batch_view(lights.ambient_color, points, 1, "lights.ambient_color")
    ambient = mat_ambient * light_ambient
    diffuse = _batch_view(materials.diffuse_color, points, 1, "materials.diffuse_color")
    specular = _batch_view(materials.specular_color, points, 1, "materials.specular_color")
    return ambient, diffuse * light_diffuse, specular * light_specular


def phong_shading(
    meshes: Meshes,
    fragments: Fragments,
    lights: Lights,
    cameras: CamerasBase,
    materials: Materials,
    texels: torch.Tensor,
) -> torch.Tensor:
    """Per-pixel lighting (Phong): light the interpolated position and normal of each pixel.

    ``colors = (ambient + diffuse) * texels + specular``.

    Args:
        meshes: the N meshes that were rasterized (world space).
        fragments: their fragments, (N, H, W, K) per field.
        lights, cameras, materials: batch size 1 or N.
        texels: (N, H, W, K, C) surface colour per pixel, e.g. from ``sample_textures``.

    Returns:
        (N, H, W, K, C). Differentiable w.r.t. vertex positions (and ``bary_coords``),
        texels, light/material tensors and cameras.
    """
    _check_fragments(meshes, fragments)
    _check_texels(texels, fragments)
    verts = meshes.verts_packed()  # (V, 3)
    faces = meshes.faces_packed()  # (F, 3)
    verts_normals = meshes.verts_normals_packed()  # (V, 3)
    pixel_coords = interpolate_face_attributes(
        fragments.pix_to_face, fragments.bary_coords, verts[faces]
    )
    pixel_normals = interpolate_face_attributes(
        fragments.pix_to_face, fragments.bary_coords, verts_normals[faces]
    )
    ambient, diffuse, specular = _apply_lighting(
        pixel_coords, pixel_normals, lights, cameras, materials
    )
    return (ambient + diffuse) * texels + specular


def gouraud_shading(
    meshes: Meshes,
    fragments: Fragments,
    lights: Lights,
    cameras: CamerasBase,
    materials: Materials,
    verts_colors: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-vertex lighting (Gouraud), then interpolation of the shaded vertex colours.

    Each vertex gets ``colour * (ambient + diffuse) + specular`` with its own position and
    normal and the lights/materials/camera of its mesh; pixels interpolate those.

    Args:
        meshes: the N meshes that were rasterized (world space).
        fragments: their fragments, (N, H, W, K) per field.
        lights, cameras, materials: batch size 1 or N.
        verts_colors: (V, C) colour of each packed vertex. None = take them from
            ``meshes.textures.verts_features_packed()`` (a ``TexturesVertex``; like PyTorch3D,
            Gouraud shading needs per-vertex colours).

    Returns:
        (N, H, W, K, C), zero where ``pix_to_face`` is -1. Differentiable w.r.t. vertex
        positions, ``bary_coords``, verts_colors, light/material tensors and cameras.
    """
    _check_fragments(meshes, fragments)
    verts = meshes.verts_packed()  # (V, 3)
    if verts_colors is None:
        textures = meshes.textures
        if textures is None or not hasattr(textures, "verts_features_packed"):
            raise ValueError(
                "verts_colors is None and meshes.textures has no verts_features_packed(): "
                "Gouraud shading needs per-vertex colours (TexturesVertex or verts_colors)"
            )
        verts_colors = textures.verts_features_packed()
    if (
        not torch.is_tensor(verts_colors)
        or verts_colors.ndim != 2
        or verts_colors.shape[0] != verts.shape[0]
    ):
        got = tuple(verts_colors.shape) if torch.is_tensor(verts_colors) else verts_colors
        raise ValueError(f"verts_colors must be (V={verts.shape[0]}, C), got {got}")
    faces = meshes.faces_packed()  # (F, 3)
    verts_normals = meshes.verts_normals_packed()  # (V, 3)
    n = len(meshes)
    for name, size in (
        ("lights", len(lights)),
        ("materials", len(materials)),
        ("cameras", cameras.get_camera_center().shape[0]),
    ):
        if size not in (1, n):
            raise ValueError(f"{name} has batch size {size} but meshes has {n}; use 1 or {n}")
    batch_idx = meshes.verts_packed_to_mesh_idx() if n > 1 else None
    ambient, diffuse, specular = _apply_lighting(
        verts, verts_normals, lights, cameras, materials, batch_idx=batch_idx
    )
    verts_colors_shaded = verts_colors * (ambient + diffuse) + specular  # (V, C)
    return interpolate_face_attributes(
        fragments.pix_to_face, fragments.bary_coords, verts_colors_shaded[faces]
    )


def flat_shading(
    meshes: Meshes,
    fragments: Fragments,
    lights: Lights,
    cameras: CamerasBase,
    materials: Materials,
    texels: torch.Tensor,
) -> torch.Tensor:
    """Per-face lighting (flat): light each face at its centroid with its face normal.

    ``colors = (ambient + diffuse) * texels + specular``; empty pixels are lit with zero
    position and normal (like PyTorch3D), which the blending ignores.

    Args:
        meshes, fragments, lights, cameras, materials, texels: as in :func:`phong_shading`.

    Returns:
        (N, H, W, K, C). Differentiable w.r.t. vertex positions, texels, light/material
        tensors and cameras (not w.r.t. ``bary_coords``, which flat shading does not use).
    """
    _check_fragments(meshes, fragments)
    _check_texels(texels, fragments)
    verts = meshes.verts_packed()  # (V, 3)
    faces = meshes.faces_packed()  # (F, 3)
    pix_to_face = fragments.pix_to_face
    shape = (*pix_to_face.shape, 3)
    if faces.shape[0] == 0:
        pixel_coords = verts.new_zeros(shape)
        pixel_normals = verts.new_zeros(shape)
    else:
        face_coords = verts[faces].mean(dim=-2)  # (F, 3) centroids
        face_normals = meshes.faces_normals_packed()  # (F, 3)
        mask = (pix_to_face >= 0)[..., None].to(verts.dtype)
        idx = pix_to_face.clamp(min=0)
        pixel_coords = face_coords[idx] * mask
        pixel_normals = face_normals[idx] * mask
    ambient, diffuse, specular = _apply_lighting(
        pixel_coords, pixel_normals, lights, cameras, materials
    )
    return (ambient + diffuse) * texels + specular


def normal_shading(meshes: Meshes, fragments: Fragments) -> torch.Tensor:
    """Interpolated vertex normals per pixel, renormalised to unit length (for a normal map).

    Args:
        meshes: the N meshes that were rasterized.
        fragments: their fragments, (N, H, W, K) per field.

    Returns:
        (N, H, W, K, 3) unit world-space normals; zero where ``pix_to_face`` is -1.
        Differentiable w.r.t. vertex positions and ``bary_coords``.
    """
    _check_fragments(meshes, fragments)
    verts_normals = meshes.verts_normals_packed()
    pixel_normals = interpolate_face_attributes(
        fragments.pix_to_face, fragments.bary_coords, verts_normals[meshes.faces_packed()]
    )
    return F.normalize(pixel_normals, p=2, dim=-1, eps=1e-6)


def depth_shading(fragments: Fragments) -> torch.Tensor:
    """View-space depth per pixel: ``fragments.zbuf[..., None]``.

    Returns:
        (N, H, W, K, 1); -1 where ``pix_to_face`` is -1. Differentiable w.r.t. ``zbuf``.
    """
    zbuf = fragments.zbuf
    if not torch.is_tensor(zbuf) or zbuf.ndim != 4:
        raise ValueError("fragments.zbuf must be a tensor (N, H, W, K)")
    return zbuf[..., None]

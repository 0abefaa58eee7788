"""Uniform point sampling on mesh surfaces (PyTorch3D's ``sample_points_from_meshes``)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import torch

from ..structures import Meshes


def _rand_barycentric(
    n: int, s: int, dtype: torch.dtype, device: torch.device,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Barycentric weights uniform over a triangle's area (the square-root trick).

    With u, v ~ U(0, 1), ``(1 - sqrt(u), sqrt(u) (1 - v), sqrt(u) v)`` has uniform density:
    sqrt(u) is the distance from v0 scaled to [0, 1], whose density must grow linearly.
    """
    u, v = torch.rand(2, n, s, dtype=dtype, device=device, generator=generator)
    su = u.sqrt()
    return 1.0 - su, su * (1.0 - v), su * v


def sample_points_from_meshes(
    meshes: Meshes,
    num_samples: int = 10000,
    return_normals: bool = False,
    return_textures: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Sample points uniformly (by area) on the surface of each mesh.

    Faces are drawn with probability proportional to their area (``torch.multinomial``, with
    replacement), then a uniform point inside the face. A mesh whose faces all have zero
    area gets its faces drawn uniformly instead of failing.

    Args:
        meshes: batch of N meshes.
        num_samples: S, number of points per mesh (>= 1).
        return_normals: also return the unit normal of the face under each sample,
            ``(v1 - v0) x (v2 - v1)`` normalised.
        return_textures: also return the texture colour at each sample, from
            ``meshes.textures.sample_textures`` (TexturesVertex, TexturesUV, ...).
        generator: optional ``torch.Generator`` (on the meshes' device) for reproducible
            face choices and barycentric coordinates.

    Returns:
        ``samples`` (N, S, 3); plus ``normals`` (N, S, 3) and/or ``textures`` (N, S, C), in
        that order, when asked. Rows of meshes with no vertices or faces are zeros.
        Samples and normals are differentiable w.r.t. the vertices (face choice and
        barycentric coordinates are not); textures w.r.t. the texture features.

    Raises:
        ValueError: empty batch (every mesh empty, as in PyTorch3D), NaN/inf vertices,
            ``num_samples`` < 1, or ``return_textures`` without textures.
    """
    if not isinstance(meshes, Meshes):
        raise ValueError(f"meshes: expected a Meshes object, got {type(meshes).__name__}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples: expected a positive int, got {num_samples!r}")
    if meshes.isempty():
        raise ValueError("meshes: Meshes are empty. (every mesh of the batch has no faces)")
    verts = meshes.verts_packed()
    if not torch.isfinite(verts).all():
        raise ValueError("meshes: Meshes contain nan or inf. (vertex coordinates)")
    if return_textures and meshes.textures is None:
        raise ValueError("meshes: Meshes do not contain textures. (return_textures=True)")

    faces = meshes.faces_packed()
    valid = meshes.valid
    first_face = meshes.mesh_to_faces_packed_first_idx()[valid]
    nf = meshes.num_faces_per_mesh()[valid]
    n_valid, N, S = int(valid.sum()), len(meshes), num_samples
    device, dtype = verts.device, verts.dtype

    with torch.no_grad():
        fv = verts.detach()[faces]
        areas = torch.linalg.cross(fv[:, 1] - fv[:, 0], fv[:, 2] - fv[:, 0], dim=1).norm(dim=1)
        F_max = int(nf.max())
        in_mesh = torch.arange(F_max, device=device)[None] < nf[:, None]  # (n_valid, F_max)
        padded = torch.zeros((n_valid, F_max), dtype=dtype, device=device)
        face_idx = first_face[:, None] + torch.arange(F_max, device=device)[None]
        padded[in_mesh] = areas[face_idx[in_mesh]]
        # multinomial rejects all-zero rows: fall back to uniform for fully degenerate meshes.
        flat = padded.sum(1) <= 0
        padded[flat] = in_mesh[flat].to(dtype)
        choice = torch.multinomial(padded, S, replacement=True, generator=generator)
        choice = choice + first_face[:, None]  # (n_valid, S) packed face ids

    w0, w1, w2 = _rand_barycentric(n_valid, S, dtype, device, generator)
    fv = verts[faces]  # differentiable corners
    v0, v1, v2 = fv[:, 0], fv[:, 1], fv[:, 2]
    samples = torch.zeros((N, S, 3), dtype=dtype, device=device)
    samples[valid] = (w0[..., None] * v0[choice] + w1[..., None] * v1[choice]
                      + w2[..., None] * v2[choice])
    out: list[torch.Tensor] = [samples]

    if return_normals:
        n = torch.linalg.cross(v1 - v0, v2 - v1, dim=1)
        # Zero-area faces get a zero normal rather than NaN.
        n = n / n.norm(dim=1, keepdim=True).clamp(min=sys.float_info.epsilon)
        normals = torch.zeros((N, S, 3), dtype=dtype, device=device)
        normals[valid] = n[choice]
        out.append(normals)

    if return_textures:
        # Each sample is a one-pixel "fragment": face id + barycentrics, so any texture type
        # that can shade rasterizer output can colour the samples.
        pix_to_face = torch.full((N, S, 1, 1), -1, dtype=torch.int64, device=device)
        pix_to_face[valid] = choice[..., None, None]
        bary = torch.zeros((N, S, 1, 1, 3), dtype=dtype, device=device)
        bary[valid] = torch.stack([w0, w1, w2], dim=-1)[:, :, None, None, :]
        frags = SimpleNamespace(pix_to_face=pix_to_face, bary_coords=bary)
        out.append(meshes.sample_textures(frags)[:, :, 0, 0, :])

    return out[0] if len(out) == 1 else tuple(out)

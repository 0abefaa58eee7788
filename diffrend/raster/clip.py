"""Near-plane clipping and frustum culling of screen-space faces, before rasterization.

A face with a vertex at or behind the camera cannot be rasterized in NDC (its projection
blows up), so PyTorch3D clips faces against the plane ``z = z_clip_value``:

- all three vertices behind: the face is dropped;
- two behind: it becomes the smaller triangle in front of the plane;
- one behind: the quadrilateral in front is split in two triangles, "halves" of one face,
  of which only the nearer may be listed at a pixel (``neighbor``).

After rasterization, :func:`unclip_fragments` maps the result back to the original faces:
face indices, and barycentrics expressed in the original triangle. Everything here is plain
torch, differentiable w.r.t. the face vertices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClippedFaces:
    """Faces after clipping, with what is needed to map results back.

    Attributes:
        face_verts: (F2, 3, 3) faces to rasterize (the F originals first, in place, then the
            second halves of split faces).
        face_mesh: (F2,) int64 mesh index; -1 for dropped faces.
        to_original: (F2,) int64 original face index of each face; None = identity.
        bary_map: (F2, 3, 3) or None; ``bary_orig = bary_map[f] @ bary_clipped``.
        neighbor: (F2,) int64 the other half of a split face, or -1.
    """

    face_verts: torch.Tensor
    face_mesh: torch.Tensor
    to_original: torch.Tensor | None
    bary_map: torch.Tensor | None
    neighbor: torch.Tensor


def _cut(
    a: torch.Tensor, b: torch.Tensor, z_clip: float, persp: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Point where edge a-b (each (T, 3)) crosses z = z_clip, and its weight on b: (T,3),(T,)."""
    w = (a[:, 2] - z_clip) / (a[:, 2] - b[:, 2])
    p = a * (1 - w[:, None]) + b * w[:, None]
    if persp:
        # x, y are projected: interpolate in view space (times z), then project at z_clip.
        xy = (a[:, :2] * a[:, 2:3] * (1 - w[:, None]) + b[:, :2] * b[:, 2:3] * w[:, None])
        p = torch.cat((xy / z_clip, p[:, 2:3]), dim=1)
    return p, w


def clip_faces(
    face_verts: torch.Tensor,
    face_mesh: torch.Tensor,
    z_clip_value: float | None,
    perspective_correct: bool,
    cull_extent: tuple[float, float] | None,
) -> ClippedFaces:
    """Clip faces against z = z_clip_value and/or cull those outside the view.

    Args:
        face_verts: (F, 3, 3) screen-space faces (x, y NDC, z view depth).
        face_mesh: (F,) int64 mesh index of each face.
        z_clip_value: the clipping plane's depth (a number or a 0-dim tensor), or None for
            no clipping.
        perspective_correct: whether x, y are perspective projections (then new vertices are
            interpolated in view space).
        cull_extent: (X, Y) half-extent of the image in NDC to cull faces entirely outside
            it, or None.

    Returns:
        :class:`ClippedFaces`. Differentiable w.r.t. ``face_verts``.
    """
    F = face_verts.shape[0]
    dev = face_verts.device
    arange = torch.arange(F, device=dev)
    z = face_verts[:, :, 2]
    if cull_extent is not None:
        face_mesh = face_mesh.clone()
        ex, ey = cull_extent
        x, y = face_verts[:, :, 0], face_verts[:, :, 1]
        out = (
            (x < -ex).all(1) | (x > ex).all(1) | (y < -ey).all(1) | (y > ey).all(1)
        ) & (z > 0).all(1)
        face_mesh[out] = -1
    if z_clip_value is None or F == 0:
        return ClippedFaces(face_verts, face_mesh, None, None, torch.full_like(arange, -1))
    if torch.is_tensor(z_clip_value):
        # one host read (a CUDA sync) for the plane's validity and whether any face needs it
        # one host read (a CUDA sync) of the plane and the nearest depth; both exact in
        # float64, so comparing them here equals comparing on the device
        zc = z_clip_value.detach().to(device=dev, dtype=z.dtype)
        z_clip_value, z_min = torch.stack((zc, z.min())).tolist()
        if not (math.isfinite(z_clip_value) and z_clip_value > 0):
            raise ValueError(f"z_clip_value must be positive and finite, got {z_clip_value}")
        if z_min >= z_clip_value:
            return ClippedFaces(face_verts, face_mesh, None, None, torch.full_like(arange, -1))
    elif bool(z.min() >= z_clip_value):
        return ClippedFaces(face_verts, face_mesh, None, None, torch.full_like(arange, -1))
    face_mesh = face_mesh.clone()
    behind = z < z_clip_value  # (F, 3)
    n_behind = behind.sum(1)
    face_mesh[n_behind == 3] = -1
    live = face_mesh >= 0
    case3 = torch.nonzero(live & (n_behind == 2)).flatten()
    case4 = torch.nonzero(live & (n_behind == 1)).flatten()
    if case3.numel() == 0 and case4.numel() == 0:
        return ClippedFaces(face_verts, face_mesh, None, None, torch.full_like(arange, -1))

    eye = torch.eye(3, dtype=face_verts.dtype, device=dev)
    bary_map = eye.expand(F + case4.numel(), 3, 3).clone()
    to_original = torch.cat((arange, case4))
    neighbor = torch.full((F + case4.numel(),), -1, dtype=torch.int64, device=dev)

    def corners(idx: torch.Tensor, lone: torch.Tensor):
        # lone = index of the vertex on its own side of the plane; the other two keep order.
        i1 = lone
        i2 = (lone + 1) % 3
        i3 = (lone + 2) % 3
        fv = face_verts[idx]
        t = torch.arange(idx.numel(), device=dev)
        p1, p2, p3 = fv[t, i1], fv[t, i2], fv[t, i3]
        p4, w2 = _cut(p1, p2, z_clip_value, perspective_correct)
        p5, w3 = _cut(p1, p3, z_clip_value, perspective_correct)
        n = idx.numel()

        def onehot(i, val=None):
            m = torch.zeros(n, 3, dtype=face_verts.dtype, device=dev)
            return m.index_put((t, i), torch.ones(n, dtype=m.dtype, device=dev) if val is None
                               else val)

        b1, b2, b3 = onehot(i1), onehot(i2), onehot(i3)
        b4 = onehot(i1, 1 - w2) + onehot(i2, w2)
        b5 = onehot(i1, 1 - w3) + onehot(i3, w3)
        return (p1, p2, p3, p4, p5), (b1, b2, b3, b4, b5)

    verts = face_verts
    if case3.numel():
        lone = torch.nonzero(~behind[case3])[:, 1]
        (p1, _, _, p4, p5), (b1, _, _, b4, b5) = corners(case3, lone)
        verts = verts.index_put((case3,), torch.stack((p4, p5, p1), 1))
        bary_map = bary_map.index_put((case3,), torch.stack((b4, b5, b1), 2))
    extra = verts.new_zeros((0, 3, 3))
    if case4.numel():
        lone = torch.nonzero(behind[case4])[:, 1]
        (_, p2, p3, p4, p5), (_, b2, b3, b4, b5) = corners(case4, lone)
        verts = verts.index_put((case4,), torch.stack((p4, p2, p5), 1))
        extra = torch.stack((p5, p2, p3), 1)
        bary_map = bary_map.index_put((case4,), torch.stack((b4, b2, b5), 2))
        second = F + torch.arange(case4.numel(), device=dev)
        bary_map = bary_map.index_put((second,), torch.stack((b5, b2, b3), 2))
        neighbor[case4] = second
        neighbor[second] = case4
    return ClippedFaces(
        face_verts=torch.cat((verts, extra)),
        face_mesh=torch.cat((face_mesh, face_mesh[case4])),
        to_original=to_original,
        bary_map=bary_map,
        neighbor=neighbor,
    )


def unclip_fragments(
    clipped: ClippedFaces, pix_to_face: torch.Tensor, bary: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Express rasterization results of clipped faces in terms of the original faces.

    Args:
        pix_to_face: (N, H, W, K) indices into ``clipped.face_verts``.
        bary: (N, H, W, K, 3) barycentrics in the clipped faces.

    Returns:
        pix_to_face (N, H, W, K) into the original faces, bary (N, H, W, K, 3) in them.
        Differentiable w.r.t. ``bary`` and the clipping geometry.
    """
    if clipped.to_original is None:
        return pix_to_face, bary
    valid = pix_to_face >= 0
    safe = pix_to_face.clamp(min=0)
    p2f = torch.where(valid, clipped.to_original[safe], pix_to_face)
    mapped = torch.einsum("...ij,...j->...i", clipped.bary_map[safe], bary)
    return p2f, torch.where(valid[..., None], mapped, bary)

"""Pure-torch mesh rasterizer: the oracle the kernels are tested against, and the fallback
on any device.

Two steps, as in DRTK: a selection step without gradients picks the K nearest faces per
pixel (tiled over pixels and chunked over faces so memory stays bounded), then
:func:`fragment_values` recomputes depth, barycentrics and distance from the gathered face
vertices with ordinary torch ops, so autograd gives the backward. Runs in float64 too, so
``torch.autograd.gradcheck`` can check it.
"""

from __future__ import annotations

import torch

from ..fragments import RasterParams
from ..tiles import pixel_centers_torch, pixel_tiles, tile_pixels, write_k_best
from .pixel_math import CLIP_EPS, KEPS

PIXEL_TILE = 32  # pixels per side of a selection tile
FACE_CHUNK = 4096  # faces evaluated at once per tile


def _edge_dist2(px, py, ax, ay, bx, by):
    """Squared distance to segment a-b. The projection parameter is detached: at the
    optimum the distance is stationary in it, and this matches the kernel's backward."""
    ex = bx - ax
    ey = by - ay
    l2 = ex * ex + ey * ey
    degenerate = l2 <= KEPS
    t = ((ex * (px - ax) + ey * (py - ay)) / torch.where(degenerate, torch.ones_like(l2), l2))
    t = t.clamp(0.0, 1.0).detach()
    qx = torch.where(degenerate, bx, ax + t * ex) - px
    qy = torch.where(degenerate, by, ay + t * ey) - py
    return qx * qx + qy * qy


def _tri_dist2(px, py, x0, y0, x1, y1, x2, y2):
    d01 = _edge_dist2(px, py, x0, y0, x1, y1)
    d02 = _edge_dist2(px, py, x0, y0, x2, y2)
    d12 = _edge_dist2(px, py, x1, y1, x2, y2)
    # First minimum wins on ties (e01, e02, e12), like the kernel's backward.
    d = torch.where(d02 < d01, d02, d01)
    return torch.where(d12 < d, d12, d)


def edge_function(p, v0, v1):
    """Twice the signed area of the triangle (v0, v1, p): > 0 when p is right of v0 -> v1
    in NDC (x left, y up). Inputs: (..., 2)-indexable points (tensors or tuples);
    differentiable."""
    return (p[0] - v0[0]) * (v1[1] - v0[1]) - (p[1] - v0[1]) * (v1[0] - v0[0])


def barycentric_coordinates(p, v0, v1, v2):
    """Barycentric coordinates (w0, w1, w2) of the 2D point ``p`` in triangle (v0, v1, v2).

    The same formula the rasterizer uses (the area is offset by KEPS so degenerate
    triangles give large but finite values). Inputs index as ``(x, y)``; each weight has the
    broadcast shape of the coordinates. Differentiable.
    """
    area = edge_function(v2, v0, v1) + KEPS
    return (edge_function(p, v1, v2) / area, edge_function(p, v2, v0) / area,
            edge_function(p, v0, v1) / area)


def fragment_values(
    px: torch.Tensor,
    py: torch.Tensor,
    v: torch.Tensor,
    perspective_correct: bool,
    clip_barycentric_coords: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Depth, barycentrics and signed distance of pixel centres in faces.

    Args:
        px, py: (...) pixel-centre NDC coordinates.
        v: (..., 3, 3) face vertices (x, y NDC; z view depth), broadcastable with px.

    Returns:
        zbuf (...), bary (..., 3), dists (...) (negative inside), inside (...) bool.
        Differentiable w.r.t. ``v`` (and px, py).
    """
    x0, y0, z0 = v[..., 0, 0], v[..., 0, 1], v[..., 0, 2]
    x1, y1, z1 = v[..., 1, 0], v[..., 1, 1], v[..., 1, 2]
    x2, y2, z2 = v[..., 2, 0], v[..., 2, 1], v[..., 2, 2]
    w0, w1, w2 = barycentric_coordinates((px, py), (x0, y0), (x1, y1), (x2, y2))
    if perspective_correct:
        t0, t1, t2 = w0 * z1 * z2, w1 * z0 * z2, w2 * z0 * z1
        den = t0 + t1 + t2
        w0, w1, w2 = t0 / den, t1 / den, t2 / den
    inside = (w0 > 0) & (w1 > 0) & (w2 > 0)
    if clip_barycentric_coords:
        c0, c1, c2 = w0.clamp(min=0.0), w1.clamp(min=0.0), w2.clamp(min=0.0)
        s = (c0 + c1 + c2).clamp(min=CLIP_EPS)
        w0, w1, w2 = c0 / s, c1 / s, c2 / s
    zbuf = w0 * z0 + w1 * z1 + w2 * z2
    d = _tri_dist2(px, py, x0, y0, x1, y1, x2, y2)
    dists = torch.where(inside, -d, d)
    return zbuf, torch.stack((w0, w1, w2), dim=-1), dists, inside


def _face_ok(fv: torch.Tensor, cull_backfaces: bool) -> torch.Tensor:
    x0, y0, x1, y1, x2, y2 = (fv[:, i, j] for i in range(3) for j in range(2))
    area = (x0 - x1) * (y2 - y1) - (y0 - y1) * (x2 - x1)
    ok = (fv[:, :, 2].amin(dim=1) >= KEPS) & (area.abs() > KEPS)
    if cull_backfaces:
        ok &= area >= 0
    return ok


@torch.no_grad()
def select_faces(
    face_verts: torch.Tensor,
    face_mesh: torch.Tensor,
    n_meshes: int,
    neighbor: torch.Tensor,
    params: RasterParams,
) -> torch.Tensor:
    """The discrete step: the K nearest faces at each pixel, (N, H, W, K) int64, -1 = none.

    Order: ascending depth, then ascending face index.
    """
    H, W = params.image_size
    K = params.faces_per_pixel
    blur_radius = params.blur_radius
    dev = face_verts.device
    ys, xs = pixel_centers_torch(H, W, face_verts.dtype, dev)
    out = torch.full((n_meshes, H, W, K), -1, dtype=torch.int64, device=dev)
    ok = _face_ok(face_verts, params.cull_backfaces) & (face_mesh >= 0)
    radius = blur_radius**0.5
    lo = face_verts[:, :, :2].amin(dim=1) - radius  # (F, 2)
    hi = face_verts[:, :, :2].amax(dim=1) + radius
    for n in range(n_meshes):
        faces_n = torch.nonzero(ok & (face_mesh == n)).flatten()
        for r0, c0, ty, tx in pixel_tiles(ys, xs, PIXEL_TILE):
            hit = (
                (lo[faces_n, 0] <= tx.max())
                & (hi[faces_n, 0] >= tx.min())
                & (lo[faces_n, 1] <= ty.max())
                & (hi[faces_n, 1] >= ty.min())
            )
            cand = faces_n[hit]
            if cand.numel() == 0:
                continue
            px, py = tile_pixels(ty, tx)
            best_z = torch.full((px.shape[0], 0), 0.0, dtype=face_verts.dtype, device=dev)
            best_f = torch.full((px.shape[0], 0), -1, dtype=torch.int64, device=dev)
            for s in range(0, cand.numel(), FACE_CHUNK):
                fc = cand[s : s + FACE_CHUNK]
                z, valid, _ = _candidates(
                    px, py, face_verts, fc, ok, lo, hi, neighbor, blur_radius,
                    params.perspective_correct, params.clip_barycentric_coords,
                )
                z = torch.where(valid, z, torch.full_like(z, float("inf")))
                fcb = torch.where(valid, fc.expand_as(valid),
                                  torch.full_like(valid, -1, dtype=torch.int64))
                z_all = torch.cat((best_z, z), dim=1)
                f_all = torch.cat((best_f, fcb), dim=1)
                # Sort by (depth, face index): stable sort on face then on depth.
                o1 = torch.argsort(f_all, dim=1, stable=True)
                z_all, f_all = z_all.gather(1, o1), f_all.gather(1, o1)
                o2 = torch.argsort(z_all, dim=1, stable=True)[:, :K]
                best_z, best_f = z_all.gather(1, o2), f_all.gather(1, o2)
            write_k_best(out, n, r0, c0, ty, tx, best_z, best_f)
    return out


def _candidates(px, py, face_verts, fc, ok, lo, hi, neighbor, blur_radius, persp, clip):
    """Depth and validity of pixels (P, 1) against faces ``fc`` (C,): (P, C) tensors."""

    def valid_for(idx):
        v = face_verts[idx].unsqueeze(0)  # (1, C, 3, 3)
        z, _, d, inside = fragment_values(px, py, v, persp, clip)
        in_box = (
            (px >= lo[idx, 0]) & (px <= hi[idx, 0]) & (py >= lo[idx, 1]) & (py <= hi[idx, 1])
        )
        valid = ok[idx] & in_box & (z >= 0) & (inside | (d.abs() < blur_radius))
        return z, valid, d

    z, valid, d = valid_for(fc)
    g = neighbor[fc]
    has = g >= 0
    if bool(has.any()):
        # Halves of a near-plane-clipped face: only the one with the smaller signed
        # distance counts (ties: the lower index), as in the kernel.
        gi = torch.where(has, g, fc)
        _, g_valid, g_d = valid_for(gi)
        beaten = has & g_valid & ((g_d < d) | ((g_d == d) & (gi < fc)))
        valid = valid & ~beaten
    return z, valid, d


def rasterize_reference(
    face_verts: torch.Tensor,
    face_mesh: torch.Tensor,
    n_meshes: int,
    neighbor: torch.Tensor,
    params: RasterParams,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rasterize screen-space faces with torch ops only.

    Args:
        face_verts: (F, 3, 3) faces, x and y in NDC, z the view depth. Any float dtype/device.
        face_mesh: (F,) int64 mesh (image) index of each face; -1 = skip the face.
        n_meshes: N, the number of images.
        neighbor: (F,) int64 index of the other half of a near-plane-clipped face, or -1.
        params: image size and settings (:class:`..fragments.RasterParams`).

    Returns:
        pix_to_face (N, H, W, K) int64, zbuf (N, H, W, K), bary_coords (N, H, W, K, 3),
        dists (N, H, W, K) in the dtype of ``face_verts`` (computed in float64); -1 where
        empty. zbuf, bary_coords and dists are differentiable w.r.t. ``face_verts`` (autograd).
    """
    # Computed in float64 whatever the input dtype, as the Numba kernel does (float32 edge
    # functions of faces with a far vertex, ~1e8, cancel to noise and miss or invent
    # coverage; near-equal depths flip), then rounded to the input dtype. MPS has no float64.
    dtype = face_verts.dtype
    wide = torch.float64 if face_verts.device.type != "mps" else dtype
    fv = face_verts.to(wide)
    p2f = select_faces(fv, face_mesh, n_meshes, neighbor, params)
    H, W = params.image_size
    ys, xs = pixel_centers_torch(H, W, wide, face_verts.device)
    mask = p2f >= 0
    idx = torch.nonzero(mask, as_tuple=True)
    v = fv[p2f[mask]]
    z, b, d, _ = fragment_values(
        xs[idx[2]], ys[idx[1]], v, params.perspective_correct, params.clip_barycentric_coords
    )
    z, b, d = z.to(dtype), b.to(dtype), d.to(dtype)
    shape = p2f.shape
    zbuf = torch.full(shape, -1.0, dtype=face_verts.dtype, device=face_verts.device)
    dists = torch.full_like(zbuf, -1.0)
    bary = torch.full((*shape, 3), -1.0, dtype=face_verts.dtype, device=face_verts.device)
    zbuf = zbuf.index_put(idx, z)
    dists = dists.index_put(idx, d)
    bary = bary.index_put(idx, b)
    return p2f, zbuf, bary, dists

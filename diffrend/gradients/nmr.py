"""Neural Mesh Renderer's silhouette gradient (Kato et al. 2018), written from the paper.

The forward image is the hard silhouette. Its pixels are step functions of each vertex
coordinate: pixel p changes from ``I_before`` to ``I_after`` when moving vertex k by ``dx``
brings a silhouette edge of one of its faces across p's centre. NMR's backward pass uses the
finite slope ``(I_after - I_before) / dx`` of that step for every pixel of the row (for x;
of the column, for y) that the edge can sweep, but only where the step would lower the loss
(the upstream gradient and ``I_after - I_before`` have opposite signs). The gradient thus
reaches pixels far from the outline (decaying as 1 / distance), unlike antialiasing.

Here, for each silhouette edge of a front-facing triangle (boundary edges, or edges whose
neighbour faces away; see :func:`~diffrend.gradients.antialias`) crossing a pixel row at
``x_e``, with the edge's vertices weighted ``(1 - lambda, lambda)`` at that row:

- pixels outside the triangle's side, currently background: ``I_after = 1``, ``dx =
  (x_p - x_e) / w_k``;
- pixels inside, where this triangle is the visible one: ``I_after = 0`` (uncovered, as
  there is no surface behind a silhouette edge), ``dx`` likewise.

Distances are clamped to at least half a pixel so the slope stays finite.
"""

from __future__ import annotations

import torch

from ..raster.grid import pixel_centers_torch
from .antialias import _edge_topology, hard_silhouette


def _sweeps(face_xy, face_image, faces_edge, p2f, grad, centers_along, centers_across, axis):
    """Gradient (F, 3) w.r.t. one screen coordinate of each face corner, from edges
    sweeping along ``axis`` (0: x, sweeping pixel rows; 1: y, sweeping columns)."""
    n_faces = face_xy.shape[0]
    out = torch.zeros(n_faces, 3, dtype=grad.dtype, device=grad.device)
    f_idx, e_idx = faces_edge
    if f_idx.numel() == 0:
        return out
    ia, ib = (e_idx + 1) % 3, (e_idx + 2) % 3
    a = face_xy[f_idx, ia]  # (E, 2)
    b = face_xy[f_idx, ib]
    c = face_xy[f_idx, e_idx]
    u, v = axis, 1 - axis  # u: the swept coordinate, v: the one that picks the line
    # Lines (rows for x, columns for y) each edge crosses.
    lo, hi = torch.minimum(a[:, v], b[:, v]), torch.maximum(a[:, v], b[:, v])
    lines = centers_across  # (L,) coordinate v of each pixel line
    hit = (lines[None, :] >= lo[:, None]) & (lines[None, :] < hi[:, None])  # (E, L)
    e_sel, l_sel = hit.nonzero(as_tuple=True)
    if e_sel.numel() == 0:
        return out
    av, bv = a[e_sel], b[e_sel]
    lam = (lines[l_sel] - av[:, v]) / (bv[:, v] - av[:, v])
    cross = av[:, u] + lam * (bv[:, u] - av[:, u])  # (P,) where the edge meets the line
    # Which way is outside: the edge function is positive or negative on the third corner's
    # side, and moving +x changes it by -(b - a)_y, moving +y by +(b - a)_x.
    ab = bv - av
    cv = c[e_sel] - av
    side_c = ab[:, 0] * cv[:, 1] - ab[:, 1] * cv[:, 0]
    d_edge = -ab[:, 1] if u == 0 else ab[:, 0]
    outside = torch.where(torch.sign(d_edge) == torch.sign(side_c), -1.0, 1.0).to(grad.dtype)
    img = face_image[f_idx[e_sel]]
    # All pixels of each line: (P, M) distances along u.
    pos = centers_along[None, :]
    delta = pos - cross[:, None]  # signed offset of each pixel from the edge crossing
    step = (centers_along[0] - centers_along[1]).abs()
    dist = delta.abs().clamp(min=0.5 * step)
    is_out = (torch.sign(delta) == outside[:, None])
    if axis == 0:  # the faces and upstream gradients along each line: (P, M)
        s_vals, g_vals = p2f[img, l_sel, :], grad[img, l_sel, :]
    else:
        s_vals, g_vals = p2f[img, :, l_sel], grad[img, :, l_sel]
    covered = s_vals >= 0
    fid = f_idx[e_sel][:, None]
    # Outside & background: covering it (+1) helps when the loss gradient is negative.
    use_out = is_out & ~covered & (g_vals < 0)
    # Inside & this face visible: uncovering it (-1) helps when the gradient is positive.
    use_in = ~is_out & (s_vals == fid) & (g_vals > 0)
    # dS/du_vertex = dI / du = (dI) / (sign * dist / w) with dI = +1 outside (moving out),
    # -1 inside (moving in): both give w * outside / dist.
    slope = outside[:, None] / dist
    contrib = (g_vals * slope * (use_out | use_in)).sum(1)  # (P,) per unit weight
    wa, wb = 1.0 - lam, lam
    out.index_put_((f_idx[e_sel], ia[e_sel]), contrib * wa, accumulate=True)
    out.index_put_((f_idx[e_sel], ib[e_sel]), contrib * wb, accumulate=True)
    return out


class _NMRSilhouette(torch.autograd.Function):
    @staticmethod
    def forward(ctx, face_verts_ndc, silhouette, pix_to_face, face_image, faces):
        ctx.save_for_backward(face_verts_ndc, pix_to_face, face_image, faces)
        return silhouette.clone()

    @staticmethod
    def backward(ctx, grad):
        face_verts_ndc, p2f, face_image, faces = ctx.saved_tensors
        n, h, w = p2f.shape
        xy = face_verts_ndc[..., :2].detach()
        with torch.no_grad():
            sil, _ = _edge_topology(face_verts_ndc, faces)
            d1, d2 = xy[:, 1] - xy[:, 0], xy[:, 2] - xy[:, 0]
            facing = torch.sign(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])
            visible = p2f[p2f >= 0]
            front = torch.sign(facing[visible].sum()) if visible.numel() else torch.tensor(1.0)
            keep = sil & (facing == front)[:, None]
            f_idx, e_idx = keep.nonzero(as_tuple=True)
            ys, xs = pixel_centers_torch(h, w, xy.dtype, xy.device)
            gx = _sweeps(xy, face_image, (f_idx, e_idx), p2f, grad, xs, ys, 0)
            gy = _sweeps(xy, face_image, (f_idx, e_idx), p2f, grad, ys, xs, 1)
            g = torch.zeros_like(face_verts_ndc)
            g[..., 0], g[..., 1] = gx, gy
        return g, None, None, None, None


def nmr_silhouette_faces(face_verts_ndc: torch.Tensor, pix_to_face: torch.Tensor,
                         face_image: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """The functional core of :func:`nmr_silhouette`.

    Args:
        face_verts_ndc: (F, 3, 3) packed faces' vertices in NDC (x, y used).
        pix_to_face: (N, H, W) int64 visible face per pixel (-1: background).
        face_image: (F,) int64 image each face is drawn into.
        faces: (F, 3) int64 packed vertex indices (for the edge topology).

    Returns:
        (N, H, W) hard silhouette; its backward pass gives ``face_verts_ndc`` NMR's gradient
        (x and y; none for z).
    """
    silhouette = hard_silhouette(face_verts_ndc, pix_to_face)
    n_faces = face_verts_ndc.shape[0]
    if tuple(faces.shape) != (n_faces, 3) or tuple(face_image.shape) != (n_faces,):
        raise ValueError(f"faces must be ({n_faces}, 3) and face_image ({n_faces},)")
    return _NMRSilhouette.apply(face_verts_ndc, silhouette, pix_to_face, face_image, faces)


def nmr_silhouette(fragments, meshes, cameras) -> torch.Tensor:
    """Hard silhouettes (N, H, W) whose backward pass follows NMR's rule.

    Args:
        fragments: a hard rasterization (``faces_per_pixel`` >= 1; k = 0 is used).
        meshes, cameras: what was rasterized (N meshes, or one mesh and N cameras).

    Returns:
        (N, H, W) silhouettes in {0, 1}; differentiable w.r.t. the vertices and cameras by
        NMR's approximate gradient.
    """
    from ..raster.rasterizer import meshes_to_ndc

    projected = meshes_to_ndc(meshes, cameras)
    faces = projected.faces_packed()
    return nmr_silhouette_faces(projected.verts_packed()[faces], fragments.pix_to_face[..., 0],
                                projected.faces_packed_to_mesh_idx(), faces)
